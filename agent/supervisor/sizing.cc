#include "agent/supervisor/sizing.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/supervisor/size_parse.h"

namespace corral::agent {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

// Debian's Abseil has its own string_view type.
absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }

bool IsUsable(const CpuQuota& q) { return q.quota_us > 0 && q.period_us > 0; }

double Cpus(const CpuQuota& q) {
  return static_cast<double>(q.quota_us) / static_cast<double>(q.period_us);
}

// quota / period rounded, in integers so 200000/100000 is exactly 2.
int64_t RoundQuota(const CpuQuota& q, CpuRounding rounding) {
  int64_t n = q.quota_us / q.period_us;
  if (rounding == CpuRounding::kCeil && q.quota_us % q.period_us != 0) ++n;
  return n;
}

bool IsMemoryLimit(const MemoryLimit& m) {
  return m.limit_bytes >= 0 && m.limit_bytes < kUnlimitedMemoryBytes;
}

std::string DescribeQuota(const CpuQuota& q) {
  return absl::StrFormat("cgroup %s quota %.2f CPUs at %s",
                         Sv(CgroupVersionName(q.version)), Cpus(q), q.path);
}

std::string DescribeQuotaLevel(const CpuQuota& q) {
  const std::string quota =
      q.quota_us > 0 ? absl::StrCat(q.quota_us) : std::string("max");
  return absl::StrCat(Sv(CgroupVersionName(q.version)), " ", q.path, " ", quota,
                      "/", q.period_us);
}

std::string DescribeMemoryLevel(const MemoryLimit& m) {
  std::string value = "max";
  if (IsMemoryLimit(m)) {
    value = FormatSize(m.limit_bytes);
  } else if (m.limit_bytes >= 0) {
    value = absl::StrCat("unlimited (", m.limit_bytes, ")");
  }
  return absl::StrCat(Sv(CgroupVersionName(m.version)), " ", m.path, " ",
                      value);
}

std::string DescribeMemoryLimit(const MemoryLimit& m) {
  return absl::StrCat(FormatSize(m.limit_bytes), " cgroup ",
                      Sv(CgroupVersionName(m.version)), " limit at ", m.path);
}

// The period-0 quotas the policy ignores, as notes.
void NotePeriodZero(const SizingInputs& in, std::vector<std::string>* notes) {
  for (const CpuQuota& q : in.cpu_quotas) {
    if (q.quota_us > 0 && q.period_us <= 0) {
      notes->push_back(absl::StrFormat(
          "cgroup %s quota %dus at %s ignored: period %d never divides",
          Sv(CgroupVersionName(q.version)), q.quota_us, q.path, q.period_us));
    }
  }
}

// The facts of a decision, each a phrase, the one that decided first.
std::vector<std::string> DecisionFacts(const SizingInputs& in,
                                       const SizingPolicy& policy,
                                       SizingRule rule, const CpuQuota* quota,
                                       int64_t usable) {
  std::vector<std::string> facts;
  facts.push_back(quota ? DescribeQuota(*quota) : "no cgroup CPU quota");
  facts.push_back(absl::StrCat("affinity ", in.affinity_cpus));
  if (in.cpuset) {
    facts.push_back(absl::StrFormat("cpuset %d CPUs (%s) at %s",
                                    in.cpuset->count, in.cpuset->cpus,
                                    in.cpuset->path));
  }
  facts.push_back(std::string(Sv(CpuRoundingName(policy.rounding))));
  facts.push_back(absl::StrCat("min-workers ", policy.min_workers));
  facts.push_back(policy.max_workers > 0
                      ? absl::StrCat("max-workers ", policy.max_workers)
                  : policy.max_workers == kMaxWorkersAuto
                      ? std::string("max-workers auto")
                      : std::string("max-workers none"));
  size_t decider = 1;  // kAffinity
  if (rule == SizingRule::kCpuQuota) decider = 0;
  if (rule == SizingRule::kCpuset) decider = 2;
  if (rule == SizingRule::kMinWorkers) decider = facts.size() - 2;
  if (rule == SizingRule::kMaxWorkers) decider = facts.size() - 1;
  std::rotate(facts.begin(), facts.begin() + decider,
              facts.begin() + decider + 1);
  if (rule == SizingRule::kMinWorkers || rule == SizingRule::kMaxWorkers) {
    absl::StrAppend(&facts[0], " (usable CPUs ", usable, ")");
  }
  return facts;
}

// "workers=N: <facts>; cgroups <layout>; cpu <levels>; memory <levels>;
// notes: <notes>".
std::string ExplainWorkers(const SizingInputs& in,
                           const std::vector<std::string>& facts, int workers,
                           const std::vector<std::string>& notes) {
  std::string line =
      absl::StrCat("workers=", workers, ": ", absl::StrJoin(facts, ", "),
                   "; cgroups ", Sv(CgroupLayoutName(in.layout)));
  std::vector<std::string> cpu;
  for (const CpuQuota& q : in.cpu_quotas) cpu.push_back(DescribeQuotaLevel(q));
  if (!cpu.empty()) absl::StrAppend(&line, "; cpu ", absl::StrJoin(cpu, ", "));
  std::vector<std::string> memory;
  for (const MemoryLimit& m : in.memory_limits) {
    memory.push_back(DescribeMemoryLevel(m));
  }
  if (!memory.empty()) {
    absl::StrAppend(&line, "; memory ", absl::StrJoin(memory, ", "));
  }
  if (!notes.empty()) {
    absl::StrAppend(&line, "; notes: ", absl::StrJoin(notes, "; "));
  }
  return line;
}

// max(min_bytes, percent of the limit) rounded up to a MiB, at most half the
// limit.
int64_t Headroom(int64_t limit, const MemoryHeadroom& headroom) {
  const __int128 share = static_cast<__int128>(limit) * headroom.percent / 100;
  int64_t bytes = std::max<int64_t>(headroom.min_bytes, share);
  bytes = (bytes + kMiB - 1) / kMiB * kMiB;
  return std::min(bytes, limit / 2);
}

}  // namespace

absl::Status ValidateSizingPolicy(const SizingPolicy& policy) {
  if (policy.min_workers < 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--min-workers=%d: must be at least 1", policy.min_workers));
  }
  if (policy.max_workers < 0 && policy.max_workers != kMaxWorkersAuto) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--max-workers=%d: must be at least 1, auto or none",
                        policy.max_workers));
  }
  if (policy.max_workers > kMaxScaleWorkers) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--max-workers=%d: at most %d", policy.max_workers, kMaxScaleWorkers));
  }
  if (policy.max_workers > 0 && policy.max_workers < policy.min_workers) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--max-workers=%d is below --min-workers=%d",
                        policy.max_workers, policy.min_workers));
  }
  return absl::OkStatus();
}

const CpuQuota* TightestCpuQuota(const SizingInputs& inputs) {
  const CpuQuota* best = nullptr;
  for (const CpuQuota& q : inputs.cpu_quotas) {
    if (!IsUsable(q)) continue;
    // q/qp < b/bp without floating point: quotas up to 2^63 stay exact.
    if (best == nullptr ||
        static_cast<__int128>(q.quota_us) * best->period_us <
            static_cast<__int128>(best->quota_us) * q.period_us) {
      best = &q;
    }
  }
  return best;
}

const MemoryLimit* TightestMemoryLimit(const SizingInputs& inputs) {
  const MemoryLimit* best = nullptr;
  for (const MemoryLimit& m : inputs.memory_limits) {
    if (!IsMemoryLimit(m)) continue;
    if (best == nullptr || m.limit_bytes < best->limit_bytes) best = &m;
  }
  return best;
}

WorkerCount DecideWorkers(const SizingInputs& inputs,
                          const SizingPolicy& policy) {
  WorkerCount out;
  std::vector<std::string> notes = inputs.notes;
  int64_t usable = inputs.affinity_cpus;
  if (usable < 1) {
    usable = 1;
    notes.push_back("affinity unknown, assumed 1 CPU");
  }
  if (inputs.cpuset && inputs.cpuset->count > 0 &&
      inputs.cpuset->count < usable) {
    usable = inputs.cpuset->count;
    out.rule = SizingRule::kCpuset;
  }
  NotePeriodZero(inputs, &notes);
  const CpuQuota* quota = TightestCpuQuota(inputs);
  if (quota != nullptr) {
    out.cpu_limit = Cpus(*quota);
    // A quota below one CPU still runs one worker.
    const int64_t rounded =
        std::max<int64_t>(1, RoundQuota(*quota, policy.rounding));
    // The quota is what someone configured: it names the rule on a tie.
    if (rounded <= usable) {
      usable = rounded;
      out.rule = SizingRule::kCpuQuota;
    }
  }
  out.usable_cpus = static_cast<int>(usable);
  int64_t workers = usable;
  if (workers < policy.min_workers) {
    workers = policy.min_workers;
    out.rule = SizingRule::kMinWorkers;
  }
  if (policy.max_workers > 0 && workers > policy.max_workers) {
    workers = policy.max_workers;
    out.rule = SizingRule::kMaxWorkers;
  }
  out.workers = static_cast<int>(workers);
  out.explanation = ExplainWorkers(
      inputs, DecisionFacts(inputs, policy, out.rule, quota, usable),
      out.workers, notes);
  return out;
}

ScaleCeiling DecideScaleCeiling(const SizingPolicy& policy, int usable_cpus,
                                int start_workers) {
  ScaleCeiling out;
  if (policy.max_workers > 0) {
    out.workers = policy.max_workers;
    out.why = absl::StrCat("--max-workers is ", policy.max_workers);
    return out;
  }
  if (policy.max_workers == kMaxWorkersNone) {
    out.why = absl::StrCat("the limit is ", kMaxScaleWorkers);
    return out;
  }
  const int cpus = std::max(usable_cpus, 1);
  const int64_t per_cpu = int64_t{kScaleCeilingPerCpu} * cpus;
  int64_t workers = std::max<int64_t>(per_cpu, kScaleCeilingFloor);
  workers = std::max<int64_t>(workers, policy.min_workers);
  workers = std::max<int64_t>(workers, start_workers);
  out.workers = static_cast<int>(std::min<int64_t>(workers, kMaxScaleWorkers));
  out.why = absl::StrFormat(
      "the default ceiling is %d (%d per usable CPU x %d CPU%s, at least "
      "%d); --max-workers=N raises it, --max-workers=none removes it",
      out.workers, kScaleCeilingPerCpu, cpus, cpus == 1 ? "" : "s",
      kScaleCeilingFloor);
  return out;
}

MemoryBudget DecideMemoryBudget(const SizingInputs& inputs, int workers,
                                const WorkerMemoryBound& bound,
                                const MemoryHeadroom& headroom) {
  MemoryBudget out;
  const MemoryLimit* limit = TightestMemoryLimit(inputs);
  if (limit != nullptr) out.limit = *limit;
  workers = std::max(workers, 1);
  const std::string limit_text =
      limit ? DescribeMemoryLimit(*limit) : "no cgroup memory limit";
  switch (bound.mode) {
    case WorkerMemoryBound::Mode::kOff:
      out.explanation = absl::StrCat("max-worker-memory=off; ", limit_text);
      return out;
    case WorkerMemoryBound::Mode::kFixed: {
      out.per_worker_bytes = bound.bytes;
      out.explanation =
          absl::StrCat("max-worker-memory=", FormatSize(bound.bytes),
                       ": fixed; ", limit_text);
      if (limit == nullptr) return out;
      const __int128 total = static_cast<__int128>(bound.bytes) * workers +
                             Headroom(limit->limit_bytes, headroom);
      if (total > limit->limit_bytes) {
        absl::StrAppend(&out.explanation, "; warning: ", workers, " workers x ",
                        FormatSize(bound.bytes),
                        " plus the agent's headroom exceed the limit, so the "
                        "kernel's OOM killer may act before the agent does");
      }
      return out;
    }
    case WorkerMemoryBound::Mode::kAuto:
      break;
  }
  if (limit == nullptr) {
    out.explanation =
        "max-worker-memory=auto: no bound, no cgroup memory limit";
    return out;
  }
  out.headroom_bytes = Headroom(limit->limit_bytes, headroom);
  int64_t per_worker = (limit->limit_bytes - out.headroom_bytes) / workers;
  if (per_worker >= kMiB) per_worker = per_worker / kMiB * kMiB;
  out.per_worker_bytes = std::max<int64_t>(per_worker, 1);
  out.explanation = absl::StrCat(
      "max-worker-memory=", FormatSize(*out.per_worker_bytes), ": auto, (",
      limit_text, " - ", FormatSize(out.headroom_bytes), " headroom) / ",
      workers, workers == 1 ? " worker" : " workers");
  return out;
}

std::string_view CpuRoundingName(CpuRounding rounding) {
  return rounding == CpuRounding::kCeil ? "ceil" : "floor";
}

std::string_view CgroupVersionName(CgroupVersion version) {
  return version == CgroupVersion::kV1 ? "v1" : "v2";
}

std::string_view CgroupLayoutName(CgroupLayout layout) {
  switch (layout) {
    case CgroupLayout::kNone:
      return "none";
    case CgroupLayout::kV1:
      return "v1";
    case CgroupLayout::kV2:
      return "v2";
    case CgroupLayout::kHybrid:
      return "hybrid";
  }
  return "unknown";
}

std::string_view SizingRuleName(SizingRule rule) {
  switch (rule) {
    case SizingRule::kAffinity:
      return "affinity";
    case SizingRule::kCpuset:
      return "cpuset";
    case SizingRule::kCpuQuota:
      return "cpu quota";
    case SizingRule::kMinWorkers:
      return "min-workers";
    case SizingRule::kMaxWorkers:
      return "max-workers";
  }
  return "unknown";
}

}  // namespace corral::agent
