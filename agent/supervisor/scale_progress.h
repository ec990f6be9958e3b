// What a Scale does, told at once, and its progress until done: the slots
// it starts become READY (or fail to), the slots it stops exit. A Scale
// returns as soon as the new target is set; whoever asked for it may follow
// it with a ScaleTracker.
//
// Pure logic: it reads WorkerView snapshots (Supervisor::Workers()) taken
// after every loop event and reports what changed. Loop thread only.
#ifndef CORRAL_AGENT_SUPERVISOR_SCALE_PROGRESS_H_
#define CORRAL_AGENT_SUPERVISOR_SCALE_PROGRESS_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "agent/supervisor/worker.h"

namespace corral::agent {

struct ScalePlan {
  int from = 0;
  int to = 0;
  // Slots started (or kept: a slot scaled down and back up before its
  // process had stopped), waited for until READY.
  std::vector<int> starting;
  // Slots whose process is stopped gracefully, waited for until it exited.
  std::vector<int> stopping;
  // "2 -> 4 workers: starting 2,3" / "4 -> 2 workers: stopping 2,3".
  std::string Describe() const;
};

// The plan of a Scale from `from` to `to` slots, from the workers as
// Supervisor::Workers() lists them right after Supervisor::Scale.
ScalePlan PlanScale(int from, int to, const std::vector<WorkerView>& workers);

struct ScaleStep {
  enum class Kind {
    kReady,     // a started slot is READY
    kFailed,    // a started slot's process ended (or never ran) before READY
    kStopped,   // a stopped slot's process exited
    kFinished,  // every slot is done (the last step)
    kEnded,     // another Scale, a drain or a shutdown took over (the last)
  };
  Kind kind = Kind::kReady;
  int worker = 0;  // kReady, kFailed, kStopped
  pid_t pid = 0;   // kReady, kStopped
  int done = 0;    // slots done so far (a failed one counts as done)
  int total = 0;   // starting + stopping
  int failed = 0;  // started slots that failed so far
  std::string message;
};

class ScaleTracker {
 public:
  // `workers`: the same snapshot the plan came from.
  ScaleTracker(ScalePlan plan, const std::vector<WorkerView>& workers);

  // The steps since the last call, given the workers now, the supervisor's
  // target and whether it is running (not draining or shutting down). The
  // last step is kFinished or kEnded; after it, done() and no more steps.
  std::vector<ScaleStep> Update(const std::vector<WorkerView>& workers,
                                int target, bool running);
  bool done() const { return done_; }
  const ScalePlan& plan() const { return plan_; }

 private:
  ScaleStep Step(ScaleStep::Kind kind, int worker, pid_t pid,
                 std::string message) const;

  ScalePlan plan_;
  std::map<int, pid_t> stopping_pids_;  // slot -> the process stopping
  std::vector<int> pending_start_;
  std::vector<int> pending_stop_;
  int done_count_ = 0;
  int failed_ = 0;
  bool done_ = false;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_SCALE_PROGRESS_H_
