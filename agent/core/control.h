// The door from the control plane (gRPC handlers, the HTTP endpoints) into
// the agent. Post() is the only call allowed from other threads; everything
// else must run on the loop thread, i.e. inside a posted closure.
#ifndef CORRAL_AGENT_CORE_CONTROL_H_
#define CORRAL_AGENT_CORE_CONTROL_H_

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/core/log_record.h"
#include "agent/options.h"
#include "agent/supervisor/event.h"
#include "agent/supervisor/memory_guard.h"
#include "agent/supervisor/sizing.h"
#include "agent/supervisor/supervisor.h"

namespace corral::agent {

// Counters for status and /metrics.
struct AgentCounters {
  uint64_t orphans_reaped = 0;
  uint64_t notify_rejected = 0;
  uint64_t log_lines_dropped = 0;
  uint64_t memory_replacements = 0;
};

class AgentControl {
 public:
  virtual ~AgentControl() = default;

  // Any thread: runs `fn` on the loop thread, soon.
  virtual void Post(std::function<void()> fn) = 0;

  // --- loop thread only ---------------------------------------------------
  virtual Supervisor& supervisor() = 0;
  virtual const Options& options() const = 0;
  virtual AgentCounters counters() const = 0;
  virtual std::optional<WorkerUsage> Usage(pid_t pid) const = 0;
  virtual const SizingState& sizing() const = 0;
  // Sets the worker count; nullopt = auto (follow the CPU limit again).
  // InvalidArgument past --max-workers, FailedPrecondition while draining.
  virtual absl::Status ScaleTo(std::optional<int> workers) = 0;
  // Graceful replacement of one slot (start new, READY, stop old).
  virtual absl::Status RestartWorker(int slot) = 0;
  // Sends `sig` to the process group `pgid` (a worker's); every failure is
  // returned.
  virtual absl::Status SignalWorkerGroup(pid_t pgid, int sig) = 0;
  // The last lines of worker output, oldest first (all workers, or `slot`).
  virtual std::vector<LogRecord> TailLogs(std::optional<int> slot,
                                          size_t max_lines) const = 0;
  // Observers run on the loop thread for every event / worker line until
  // removed with the returned id. They must not block.
  virtual int AddEventObserver(std::function<void(const Event&)> fn) = 0;
  virtual int AddLogObserver(std::function<void(const LogRecord&)> fn) = 0;
  virtual void RemoveObserver(int id) = 0;
  // True once the agent is shutting down (streams should end).
  virtual bool stopping() const = 0;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_CORE_CONTROL_H_
