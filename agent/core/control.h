// The one door from the control plane (the gRPC services, the HTTP
// endpoints) into the agent: typed commands with typed results, typed
// rollout progress, a snapshot for status, and event and log subscriptions.
// The control plane never sees the Supervisor; error texts are written here
// (or by the supervisor) and passed on unchanged.
//
// Threads: Post() and clock() may be called from any thread. Everything else
// must run on the agent's loop thread, i.e. inside a posted closure.
#ifndef CORRAL_AGENT_CORE_CONTROL_H_
#define CORRAL_AGENT_CORE_CONTROL_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/core/log_record.h"
#include "agent/supervisor/clock.h"
#include "agent/supervisor/event.h"
#include "agent/supervisor/memory_guard.h"
#include "agent/supervisor/rollout.h"
#include "agent/supervisor/scale_progress.h"
#include "agent/supervisor/sizing.h"
#include "agent/supervisor/worker.h"

namespace corral::agent {

// Counters for status and /metrics.
struct AgentCounters {
  uint64_t orphans_reaped = 0;
  uint64_t notify_rejected = 0;
  uint64_t log_lines_dropped = 0;
  // The same by source: a worker slot, or -1 for the agent's own lines.
  std::map<int, uint64_t> log_lines_dropped_by_source;
  uint64_t memory_replacements = 0;
};

enum class AgentMode { kRunning, kDraining, kStopping };

// One process of a slot (or an empty slot) and its last usage sample.
struct WorkerStatus {
  WorkerView view;
  std::optional<WorkerUsage> usage;  // nullopt: no process, or no sample yet
};

// The agent as status, /readyz and /metrics report it.
struct AgentStatus {
  pid_t pid = 0;
  AgentMode mode = AgentMode::kRunning;
  bool reloading = false;
  bool ready = false;  // running and at least min_ready workers READY
  int ready_workers = 0;
  int min_ready = 1;
  int target_workers = 0;
  bool auto_workers = false;
  SizingState sizing;
  AgentCounters counters;
  // By slot. During a rollout a slot is listed twice (the old process with
  // state STOPPING or READY, the candidate STARTING).
  std::vector<WorkerStatus> workers;
  std::vector<std::string> command;
};

// One worker in depth, for `corralctl describe`.
struct WorkerDetails {
  WorkerStatus status;
  std::vector<std::string> command;
  // From /proc at the time of asking; empty / -1 when unreadable (or no
  // process).
  std::vector<std::string> env_names;
  int open_fds = -1;
  std::string cwd;
  std::string exe;
};

struct ScaleResult {
  int previous_workers = 0;
  int target_workers = 0;
  bool auto_workers = false;
  // What happens now (ScalePlan): the slots started and the slots stopped.
  std::vector<int> starting;
  std::vector<int> stopping;
};

// A Scale's progress after its answer (scale_progress.h); the last step is
// kFinished or kEnded.
using ScaleProgressFn = std::function<void(const ScaleStep&)>;

struct DrainResult {
  Duration drain_delay = Duration::zero();  // until the workers get SIGTERM
};

struct SignalResult {
  int worker = 0;
  pid_t pid = 0;  // the process group signalled
  int signal = 0;
};

struct RestartResult {
  int worker = 0;
  pid_t old_pid = 0;
  pid_t new_pid = 0;
};

class AgentControl {
 public:
  virtual ~AgentControl() = default;

  // --- any thread ----------------------------------------------------------
  // Runs `fn` on the loop thread, soon.
  virtual void Post(std::function<void()> fn) = 0;
  // The agent's monotonic clock.
  virtual const Clock& clock() const = 0;

  // --- loop thread only: reads ---------------------------------------------
  virtual AgentStatus Status() const = 0;
  // Status().ready without building the rest (the health heartbeat).
  virtual bool Ready() const = 0;
  // True once the agent is shutting down (streams should end).
  virtual bool stopping() const = 0;
  // OK when `worker` is a slot now; NotFound naming the valid range.
  virtual absl::Status CheckWorker(int worker) const = 0;
  // One slot's current process in depth (NotFound for a slot that is not).
  virtual absl::StatusOr<WorkerDetails> DescribeWorker(int worker) const = 0;

  // --- loop thread only: commands ------------------------------------------
  // Sets the worker count; nullopt = auto (follow the CPU limit again).
  // InvalidArgument past the ceiling (--max-workers), FailedPrecondition
  // while draining. The answer comes at once; `progress` (may be null)
  // then gets each slot READY, failed or stopped, after the loop event
  // that did it, until the last step. On error it is never called.
  virtual absl::StatusOr<ScaleResult> Scale(std::optional<int> workers,
                                            ScaleProgressFn progress) = 0;
  // Readiness off now; workers stopped after the drain delay.
  virtual absl::StatusOr<DrainResult> Drain() = 0;
  virtual absl::Status Resume() = 0;
  // Graceful shutdown (as SIGTERM). Asking again is never a second SIGTERM;
  // `quick` skips the drain delay only (workers keep their stop timeout).
  virtual void Shutdown(bool quick) = 0;
  // Sends `sig` to the process group of `worker`'s current process (during
  // a rollout: the one not being retired). NotFound for an unknown slot,
  // FailedPrecondition when it has no process.
  virtual absl::StatusOr<SignalResult> SignalWorker(int worker, int sig) = 0;
  // Rolling reload. `observer` gets this rollout's progress, from
  // OnStarted (before Reload returns) to OnFinished or OnAborted. An error
  // means nothing started and `observer` is not called.
  virtual absl::Status Reload(std::shared_ptr<RolloutObserver> observer) = 0;
  // Graceful replacement of one slot (start new, READY, stop old). An error
  // means nothing started; otherwise `done` is called once with the result,
  // or Aborted (the replacement failed; the old process keeps serving).
  virtual absl::Status RestartWorker(
      int worker, std::function<void(absl::StatusOr<RestartResult>)> done) = 0;

  // --- loop thread only: subscriptions ---------------------------------------
  // Observers run for every event / worker line until removed with the
  // returned id. They must not block. A worker line is shared and may be
  // kept.
  virtual int AddEventObserver(std::function<void(const Event&)> fn) = 0;
  virtual int AddLogObserver(std::function<void(const LogRecordPtr&)> fn) = 0;
  virtual void RemoveObserver(int id) = 0;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_CORE_CONTROL_H_
