// Per-worker usage (CPU and RSS, from samples taken once a second) and the
// memory-replacement policy: a READY worker whose RSS is above the bound
// (--max-worker-memory) for kMemorySamples samples in a row is replaced
// gracefully, as a one-slot reload ("memory_replace"). When the supervisor
// refuses (another roll runs), that is reported once
// ("memory_replace_refused") and retried with every later sample.
//
// Pure logic: the samples come from the agent (agent/os reads /proc), the
// replacement goes to the Supervisor, and decisions are reported as Events.
// Loop thread only.
#ifndef CORRAL_AGENT_SUPERVISOR_MEMORY_GUARD_H_
#define CORRAL_AGENT_SUPERVISOR_MEMORY_GUARD_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "agent/supervisor/clock.h"
#include "agent/supervisor/event.h"
#include "agent/supervisor/supervisor.h"
#include "agent/supervisor/worker.h"

namespace corral::agent {

// Samples above the bound, in a row, before a worker is replaced.
inline constexpr int kMemorySamples = 2;

// CPU and memory of one worker process (its own, not its children's).
struct WorkerUsage {
  double cpu_seconds = 0;  // user + system since start
  double cpu_percent = 0;  // over the last sampling interval
  int64_t rss_bytes = 0;
};

// One reading of one worker process.
struct UsageReading {
  pid_t pid = 0;
  double cpu_seconds = 0;
  int64_t rss_bytes = 0;
};

class MemoryGuard {
 public:
  explicit MemoryGuard(EventSink* events) : events_(events) {}
  MemoryGuard(const MemoryGuard&) = delete;
  MemoryGuard& operator=(const MemoryGuard&) = delete;

  // One round of readings taken at `now`, for the supervisor's current
  // processes (a process missing from `readings` is forgotten). `bound`:
  // the per-worker RSS bound, nullopt = none. Replaces workers over it.
  void Sample(TimePoint now, const std::vector<UsageReading>& readings,
              std::optional<int64_t> bound, Supervisor& supervisor);

  // The last sample of `pid`, nullopt when there is none.
  std::optional<WorkerUsage> Usage(pid_t pid) const;
  // Replacements the supervisor accepted so far.
  uint64_t replacements() const { return replacements_; }

 private:
  struct Tracked {
    WorkerUsage usage;
    TimePoint at;
    int over = 0;  // consecutive samples above the bound
  };
  // Acts on a worker `over` samples above `bound`; returns the new count.
  int Enforce(const WorkerView& w, const WorkerUsage& usage, int64_t bound,
              int over, Supervisor& supervisor);

  EventSink* const events_;
  std::map<pid_t, Tracked> tracked_;
  uint64_t replacements_ = 0;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_MEMORY_GUARD_H_
