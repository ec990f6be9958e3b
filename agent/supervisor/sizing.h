// Sizing policy: how many workers the agent runs, and how much memory each
// may use, from what the kernel says the container may use.
//
// Pure logic: no syscalls, no file reads. The inputs come from a CgroupReader
// (below; the real one is agent/os/cgroup_reader.h) and are plain values, so
// tests build them by hand and the agent can log them or return them from
// GetStatus as they are. Every function here is thread-compatible (no shared
// state).

#ifndef CORRAL_AGENT_SUPERVISOR_SIZING_H_
#define CORRAL_AGENT_SUPERVISOR_SIZING_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace corral::agent {

// Which cgroup hierarchy a value came from.
enum class CgroupVersion { kV1, kV2 };

// How the host mounts cgroups: none found, only v1 controllers, only the v2
// unified hierarchy, or hybrid (v1 controllers plus a v2 mount, as systemd's
// "hybrid" mode and this project's build machines do).
enum class CgroupLayout { kNone, kV1, kV2, kHybrid };

// A quota or limit that is not set: v1 "-1", v2 "max".
inline constexpr int64_t kNoLimit = -1;

// One CPU bandwidth setting: v1 cpu.cfs_quota_us / cpu.cfs_period_us or v2
// cpu.max, as read from one cgroup directory.
struct CpuQuota {
  CgroupVersion version = CgroupVersion::kV2;
  // The cgroup path as /proc/self/cgroup names it, e.g. "/kubepods/pod1".
  std::string path;
  // Microseconds of CPU time per period; kNoLimit (or any value <= 0) = none.
  int64_t quota_us = kNoLimit;
  // Period in microseconds; 0 when the file is missing or says 0. A zero
  // period never divides: the quota is then treated as no limit.
  int64_t period_us = 0;

  bool operator==(const CpuQuota&) const = default;
};

// One memory limit: v1 memory.limit_in_bytes or v2 memory.max.
struct MemoryLimit {
  CgroupVersion version = CgroupVersion::kV2;
  std::string path;  // cgroup path, as in CpuQuota
  // Bytes; kNoLimit for v2 "max". v1 writes "unlimited" as a huge number
  // (9223372036854771712 with 4 KiB pages); it is kept as read, and the
  // policy treats anything at or above kUnlimitedMemoryBytes as no limit.
  int64_t limit_bytes = kNoLimit;

  bool operator==(const MemoryLimit&) const = default;
};

// Memory limits at or above this (4 EiB) mean "no limit" (v1's "unlimited"
// is LONG_MAX rounded down to a page).
inline constexpr int64_t kUnlimitedMemoryBytes = int64_t{1} << 62;

// The CPUs a cpuset allows: v1 cpuset.effective_cpus, v2
// cpuset.cpus.effective of the nearest cgroup that has the file.
struct Cpuset {
  CgroupVersion version = CgroupVersion::kV2;
  std::string path;  // cgroup path
  std::string cpus;  // the list as read, e.g. "0-3,8"
  int count = 0;     // CPUs in the list

  bool operator==(const Cpuset&) const = default;
};

// Everything the sizing decision looks at. Built by a CgroupReader.
struct SizingInputs {
  CgroupLayout layout = CgroupLayout::kNone;
  // CPUs in the agent's sched_getaffinity mask (reflects taskset and the
  // cpuset cgroup). 0 = unknown, treated as 1.
  int affinity_cpus = 0;
  std::optional<Cpuset> cpuset;
  // The agent's cgroup first, then each visible ancestor up to the root of
  // the mount (levels whose file is absent are left out).
  std::vector<CpuQuota> cpu_quotas;
  std::vector<MemoryLimit> memory_limits;  // same order
  // What the reader skipped and why (unreadable file, path outside the
  // cgroup namespace, ...). Shown at the end of the decision line.
  std::vector<std::string> notes;

  bool operator==(const SizingInputs&) const = default;
};

// Reads the current SizingInputs. The agent calls Read() once at start and
// then once a second from its loop thread; each call reads afresh (limits
// change under a Kubernetes in-place resize, and the process may be moved to
// another cgroup).
class CgroupReader {
 public:
  virtual ~CgroupReader() = default;

  // Fails only when the affinity cannot be read or a file the kernel writes
  // is malformed (the message names the file and its content). Missing limit
  // files mean "no limit at that level"; unreadable ones become a note.
  virtual absl::StatusOr<SizingInputs> Read() = 0;
};

// --cpu-rounding: what to do with a fractional CPU quota such as 1.5.
enum class CpuRounding {
  kCeil,   // 1.5 -> 2: uses the whole quota (Go 1.25, JDK, .NET); default
  kFloor,  // 1.5 -> 1: never more workers than whole CPUs (automaxprocs)
};

// --max-workers=auto (the default): auto sizing is not clamped, and Scale is
// bounded by DecideScaleCeiling. --max-workers=none: neither (only
// kMaxScaleWorkers).
inline constexpr int kMaxWorkersAuto = -1;
inline constexpr int kMaxWorkersNone = 0;
// Scale requests past this are refused whatever --max-workers says.
inline constexpr int kMaxScaleWorkers = 4096;
// The default Scale ceiling: this many workers per usable CPU, and never
// below kScaleCeilingFloor (see DecideScaleCeiling).
inline constexpr int kScaleCeilingPerCpu = 4;
inline constexpr int kScaleCeilingFloor = 8;

// The sizing options for --workers=auto. Validate with ValidateSizingPolicy.
struct SizingPolicy {
  CpuRounding rounding = CpuRounding::kCeil;  // --cpu-rounding
  int min_workers = 1;                        // --min-workers, >= 1
  // --max-workers: a count (clamps auto, bounds Scale), kMaxWorkersAuto or
  // kMaxWorkersNone.
  int max_workers = kMaxWorkersAuto;
};

// InvalidArgument naming the flag when min/max are out of range or crossed.
absl::Status ValidateSizingPolicy(const SizingPolicy& policy);

// What decided the worker count.
enum class SizingRule {
  kAffinity,    // the CPUs in the affinity mask
  kCpuset,      // a cpuset smaller than the affinity mask
  kCpuQuota,    // a cgroup CPU quota (the tightest of leaf and ancestors)
  kMinWorkers,  // raised to --min-workers
  kMaxWorkers,  // lowered to --max-workers
};

struct WorkerCount {
  int workers = 1;
  // The CPUs the agent may use (affinity, cpuset and quota), before the
  // --min-workers/--max-workers clamp.
  int usable_cpus = 1;
  SizingRule rule = SizingRule::kAffinity;
  // The tightest usable quota in CPUs (quota / period), if any.
  std::optional<double> cpu_limit;
  // One line with every input and the rule that decided, for the log, e.g.
  // "workers=2: cgroup v1 quota 1.50 CPUs at /kubepods/pod1, affinity 2,
  // ceil; ...".
  std::string explanation;
};

// usable = affinity, capped by the cpuset and by the tightest CPU quota of the
// cgroup and its visible ancestors (rounded by policy.rounding), at least 1;
// then clamped to [min_workers, max_workers].
WorkerCount DecideWorkers(const SizingInputs& inputs,
                          const SizingPolicy& policy);

// The most workers Scale may ask for, and why, for the refusal message.
struct ScaleCeiling {
  int workers = kMaxScaleWorkers;
  // "--max-workers=6", or "4 per usable CPU x 2 CPUs; --max-workers=N
  // raises it, --max-workers=none removes it".
  std::string why;
};

// --max-workers=N: N. none: kMaxScaleWorkers. auto: kScaleCeilingPerCpu x
// `usable_cpus`, at least kScaleCeilingFloor, --min-workers and
// `start_workers` (the count the agent was started with is never refused),
// at most kMaxScaleWorkers. Why relative to the CPUs: workers beyond a few
// per CPU only add memory and context switches even for I/O-bound apps
// (gunicorn suggests 2 x CPUs + 1), while `scale 1000` for `scale 10` would
// fork a thousand processes on a two-CPU pod.
ScaleCeiling DecideScaleCeiling(const SizingPolicy& policy, int usable_cpus,
                                int start_workers);

// The tightest usable CPU quota in `inputs` (quota > 0, period > 0), or null.
// The deepest cgroup wins a tie.
const CpuQuota* TightestCpuQuota(const SizingInputs& inputs);

// The tightest memory limit below kUnlimitedMemoryBytes, or null.
const MemoryLimit* TightestMemoryLimit(const SizingInputs& inputs);

// --max-worker-memory: off, a fixed size, or auto (a share of the limit).
struct WorkerMemoryBound {
  enum class Mode { kOff, kFixed, kAuto };
  Mode mode = Mode::kOff;
  int64_t bytes = 0;  // kFixed only, > 0

  bool operator==(const WorkerMemoryBound&) const = default;
};

// How much of the memory limit `auto` keeps back for the agent itself and for
// a replacement worker starting before the old one drains.
struct MemoryHeadroom {
  int64_t min_bytes = int64_t{64} << 20;  // at least 64 MiB
  int percent = 10;                       // or this share of the limit
};

// The per-worker RSS bound the agent enforces.
struct MemoryBudget {
  // The tightest cgroup memory limit, if any.
  std::optional<MemoryLimit> limit;
  int64_t headroom_bytes = 0;  // kept back from the limit (auto only)
  // RSS above which a worker is replaced; nullopt = no bound.
  std::optional<int64_t> per_worker_bytes;
  // One line for the log, e.g. "max-worker-memory=460Mi: auto, (1Gi cgroup v2
  // limit at /pod - 104Mi headroom) / 2 workers".
  std::string explanation;
};

// kAuto: (limit - headroom) / workers, rounded down to a MiB; headroom =
// max(min_bytes, percent of the limit), at most half the limit. With no limit,
// auto means no bound. kFixed: the given size, with a warning in the
// explanation when workers x size + headroom exceeds the limit.
MemoryBudget DecideMemoryBudget(const SizingInputs& inputs, int workers,
                                const WorkerMemoryBound& bound,
                                const MemoryHeadroom& headroom = {});

// The sizing inputs last read and what they decided.
struct SizingState {
  bool auto_mode = true;  // --workers=auto (or Scale to auto)
  std::optional<SizingInputs> inputs;
  std::optional<WorkerCount> decision;
  std::optional<MemoryBudget> memory;
};

// "ceil" / "floor".
std::string_view CpuRoundingName(CpuRounding rounding);
// "v1" / "v2".
std::string_view CgroupVersionName(CgroupVersion version);
// "none" / "v1" / "v2" / "hybrid".
std::string_view CgroupLayoutName(CgroupLayout layout);
// "affinity", "cpuset", "cpu quota", "min-workers", "max-workers".
std::string_view SizingRuleName(SizingRule rule);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_SIZING_H_
