// Value types for workers: the state machine's states, how a process ended,
// and the read-only view the agent reports.
#ifndef CORRAL_AGENT_SUPERVISOR_WORKER_H_
#define CORRAL_AGENT_SUPERVISOR_WORKER_H_

#include <sys/types.h>

#include <optional>
#include <string>

#include "agent/supervisor/clock.h"

namespace corral::agent {

// STARTING -> READY -> STOPPING -> (exited); a slot with no process is in
// BACKOFF (a restart is scheduled), FAILED (the agent gave up on it) or
// STOPPED (drained or shutting down: nothing restarts it but Resume).
enum class WorkerState {
  kStarting,
  kReady,
  kStopping,
  kBackoff,
  kFailed,
  kStopped
};

const char* WorkerStateName(WorkerState state);

// How a process ended, as waitpid(2) reported it.
struct ExitStatus {
  int code = 0;    // exit code when signal == 0
  int signal = 0;  // terminating signal, or 0

  static ExitStatus Exited(int code) { return {code, 0}; }
  static ExitStatus Signaled(int sig) { return {0, sig}; }
  bool Clean() const { return signal == 0 && code == 0; }
  // "exit code 3", "killed by SIGKILL".
  std::string Describe() const;
};

// A snapshot of one slot, for status reports. The current process of the
// slot; during a reload a slot briefly has two (the old one is listed with
// state kStopping as a separate entry).
struct WorkerView {
  int slot = 0;
  int generation = 0;
  pid_t pid = 0;  // 0 when no process runs (BACKOFF, FAILED, STOPPED)
  WorkerState state = WorkerState::kStarting;
  std::optional<TimePoint> started_at;
  std::optional<TimePoint> ready_at;
  int restarts = 0;
  std::string last_exit;  // "" until a process of this slot has ended
  std::string status;     // the worker's last STATUS= text
  // False for a READY worker whose connections wait untaken (AcceptWatch):
  // it does not count as ready.
  bool accepting = true;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_WORKER_H_
