// Reads the sizing inputs (CPU affinity, cgroup CPU quotas, cpuset, memory
// limits) from the kernel: /proc/self/cgroup, /proc/self/mountinfo and the
// cgroup files under the mounts they name.
//
// This is the only code that reads those files. The policy that turns the
// inputs into a worker count lives in agent/supervisor/sizing.h.

#ifndef CORRAL_AGENT_OS_CGROUP_READER_H_
#define CORRAL_AGENT_OS_CGROUP_READER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/supervisor/sizing.h"

namespace corral::agent {

// The CPUs in this thread's sched_getaffinity mask. Grows the mask until the
// kernel accepts it, so hosts with more than 1024 CPUs work.
absl::StatusOr<int> SchedAffinityCount();

// Reads the real kernel files, or a copy of them under a root prefix.
// Thread-compatible; Read() keeps no state between calls.
class ProcCgroupReader final : public CgroupReader {
 public:
  using AffinityFn = std::function<absl::StatusOr<int>()>;

  // `root` is put before every path: "" reads the real /proc/self and
  // /sys/fs/cgroup; a fixture directory reads <root>/proc/self/cgroup,
  // <root>/proc/self/mountinfo and <root><mount point>/... `affinity` gives
  // the affinity count (tests pass a fixed number).
  explicit ProcCgroupReader(std::string root,
                            AffinityFn affinity = SchedAffinityCount);

  ProcCgroupReader(const ProcCgroupReader&) = delete;
  ProcCgroupReader& operator=(const ProcCgroupReader&) = delete;

  absl::StatusOr<SizingInputs> Read() override;

 private:
  const std::string root_;
  const AffinityFn affinity_;
};

// The parsers below are pure; they are public so tests can reach them.
// They live in cgroup_parse.cc.

// One line of /proc/self/mountinfo (fields we use).
struct MountInfo {
  std::string root;         // the cgroup path mounted, e.g. "/" or "/docker/x"
  std::string mount_point;  // e.g. "/sys/fs/cgroup/cpu,cpuacct"
  std::string fs_type;      // "cgroup", "cgroup2", ...
  std::vector<std::string> super_options;  // e.g. {"rw", "cpu", "cpuacct"}
};

// Parses /proc/self/mountinfo ("36 35 98:0 /root /mnt opts [optional...] -
// fstype source superopts"). Unescapes root and mount point; super options
// may contain spaces. InvalidArgument on a line with too few fields.
absl::StatusOr<std::vector<MountInfo>> ParseMountInfo(std::string_view text);

// Undoes the kernel's octal escapes in mountinfo paths: \040 (space), \011
// (tab), \012 (newline), \134 (backslash). Other text is kept as is.
std::string UnescapeMountField(std::string_view field);

// One line of /proc/self/cgroup: "hierarchy-id:controllers:path".
struct ProcCgroup {
  int hierarchy_id = 0;                  // 0 = the v2 unified hierarchy
  std::vector<std::string> controllers;  // v1: {"cpu", "cpuacct"}; v2: {}
  std::string path;                      // may contain ':'
};

// Parses /proc/self/cgroup, splitting each line on its first two colons only.
absl::StatusOr<std::vector<ProcCgroup>> ParseProcCgroup(std::string_view text);

// `path` relative to a mount's `mount_root` ("" when equal, "/c1" for
// "/docker/x/c1" under "/docker/x"), or nullopt when the path is not under
// the mount root or has ".." components (a cgroup outside the namespace).
std::optional<std::string> RelativeCgroupPath(std::string_view mount_root,
                                              std::string_view path);

// Counts the CPUs in a kernel CPU list such as "0-3,8,10-11" (7). Empty
// (or whitespace) is 0. InvalidArgument on anything else.
absl::StatusOr<int> CountCpuList(std::string_view list);

// Parses v2 cpu.max: "max 100000", "150000 100000", "500000" (period
// defaults to 100000) and tolerates fields after the second. Sets quota_us
// (kNoLimit for "max") and period_us; `extra_fields` tells whether there
// were more than two.
struct CpuMax {
  int64_t quota_us = kNoLimit;
  int64_t period_us = 0;
  bool extra_fields = false;
};
absl::StatusOr<CpuMax> ParseCpuMax(std::string_view text);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_CGROUP_READER_H_
