// AgentControl answered on the agent's loop: commands become Supervisor and
// CpuRescaler calls with typed results, reads become an AgentStatus
// snapshot, and the supervisor's rollout progress is passed to the observer
// of the Reload or RestartWorker that started it. Error texts for the
// control plane are written here. Loop thread only, except Post() and
// clock().
#ifndef CORRAL_AGENT_CORE_LOOP_CONTROL_H_
#define CORRAL_AGENT_CORE_LOOP_CONTROL_H_

#include <functional>
#include <map>
#include <memory>

#include "agent/core/control.h"
#include "agent/core/logger.h"
#include "agent/core/worker_output.h"
#include "agent/options.h"
#include "agent/supervisor/cpu_rescaler.h"
#include "agent/supervisor/memory_guard.h"
#include "agent/supervisor/supervisor.h"

namespace corral::agent {

class LoopControl final : public AgentControl, private RolloutObserver {
 public:
  // What it answers from; every pointer must outlive this.
  struct Parts {
    const Options* options = nullptr;
    const Clock* clock = nullptr;
    Supervisor* supervisor = nullptr;
    CpuRescaler* rescaler = nullptr;
    const MemoryGuard* memory = nullptr;
    WorkerOutput* output = nullptr;
    const Logger* logger = nullptr;  // log lines dropped
    // The agent's own counters (orphans reaped, notify rejected).
    const AgentCounters* counters = nullptr;
    // Runs a closure on the loop (any thread).
    std::function<void(std::function<void()>)> post;
    // kill(-pgid, sig), every failure returned.
    std::function<absl::Status(pid_t pgid, int sig)> signal_group;
    // /proc facts of one process (environment names, fds, cwd, exe).
    std::function<WorkerDetails(pid_t pid)> describe_process;
  };

  // Becomes the supervisor's rollout observer.
  explicit LoopControl(Parts parts);
  LoopControl(const LoopControl&) = delete;
  LoopControl& operator=(const LoopControl&) = delete;
  ~LoopControl() override;

  // Passes an agent event to the event observers.
  void OnEvent(const Event& event);
  // After every loop event: the progress of the scales being followed.
  void AfterEvent();

  // AgentControl.
  void Post(std::function<void()> fn) override;
  const Clock& clock() const override { return *parts_.clock; }
  AgentStatus Status() const override;
  bool Ready() const override;
  bool stopping() const override;
  absl::Status CheckWorker(int worker) const override;
  absl::StatusOr<WorkerDetails> DescribeWorker(int worker) const override;
  absl::StatusOr<ScaleResult> Scale(std::optional<int> workers,
                                    ScaleProgressFn progress) override;
  absl::StatusOr<DrainResult> Drain() override;
  absl::Status Resume() override;
  void Shutdown(bool quick) override;
  absl::StatusOr<SignalResult> SignalWorker(int worker, int sig) override;
  absl::Status Reload(std::shared_ptr<RolloutObserver> observer) override;
  absl::Status RestartWorker(
      int worker,
      std::function<void(absl::StatusOr<RestartResult>)> done) override;
  int AddEventObserver(std::function<void(const Event&)> fn) override;
  int AddLogObserver(std::function<void(const LogRecordPtr&)> fn) override;
  void RemoveObserver(int id) override;

 private:
  // RolloutObserver: forwards to the rollout's own observer, if any (a
  // rollout started by SIGHUP or the memory bound has none).
  void OnStarted(const RolloutStep& step) override;
  void OnSlotDone(const RolloutStep& step) override;
  void OnFinished(const RolloutStep& step) override;
  void OnAborted(const RolloutStep& step) override;

  // The process `worker` is served by now, to signal it.
  // The slot's current process: during a rollout the replacement; pid 0
  // while the slot has none. nullopt for a slot that is not listed.
  std::optional<WorkerView> CurrentView(int worker) const;
  absl::StatusOr<pid_t> CurrentProcess(int worker) const;
  absl::Status NoSuchWorker(int worker) const;
  // Why a slot without a process cannot be signalled, and what brings it
  // back.
  absl::Status NoProcess(const WorkerView& w) const;

  // Constant after construction.
  const Parts parts_;

  // The observer of the rollout a Reload or RestartWorker started.
  std::shared_ptr<RolloutObserver> rollout_;
  // The scales followed with a progress callback, oldest first.
  struct FollowedScale {
    ScaleTracker tracker;
    ScaleProgressFn progress;
  };
  std::vector<FollowedScale> scales_;
  int next_observer_ = 1;
  std::map<int, std::function<void(const Event&)>> event_observers_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_CORE_LOOP_CONTROL_H_
