// Progress of a rolling replacement (a reload, or the replacement of one slot
// for a restart or a worker over its memory bound) as typed callbacks, for
// whoever started it and waits for its end.
#ifndef CORRAL_AGENT_SUPERVISOR_ROLLOUT_H_
#define CORRAL_AGENT_SUPERVISOR_ROLLOUT_H_

#include <sys/types.h>

#include <string>

namespace corral::agent {

struct RolloutStep {
  std::string reason;   // "reload", "restart", "memory"
  int total = 0;        // slots this rollout rolls
  int worker = 0;       // the slot rolled (OnSlotDone) or stopped at
                        // (OnAborted); 0 otherwise
  pid_t old_pid = 0;    // OnSlotDone: the process retired
  pid_t new_pid = 0;    // OnSlotDone: the process that took over
  std::string message;  // the sentence of the matching event
};

// Called on the supervisor's thread, each right after the event it stands
// for (reload_started, reload_slot_done, reload_finished, reload_aborted).
// A rollout ends with exactly one OnFinished or OnAborted.
class RolloutObserver {
 public:
  virtual ~RolloutObserver() = default;
  virtual void OnStarted(const RolloutStep& step) = 0;
  virtual void OnSlotDone(const RolloutStep& step) = 0;
  virtual void OnFinished(const RolloutStep& step) = 0;
  virtual void OnAborted(const RolloutStep& step) = 0;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_ROLLOUT_H_
