#include "agent/core/loop_control.h"

#include <csignal>
#include <utility>

#include "absl/strings/str_format.h"
#include "agent/os/self.h"

namespace corral::agent {
namespace {

// Waits for the end of a RestartWorker's one-slot rollout.
class RestartWaiter final : public RolloutObserver {
 public:
  using Done = std::function<void(absl::StatusOr<RestartResult>)>;
  RestartWaiter(int worker, Done done) : done_(std::move(done)) {
    result_.worker = worker;
  }
  void OnStarted(const RolloutStep&) override {}
  void OnSlotDone(const RolloutStep& step) override {
    result_.old_pid = step.old_pid;
    result_.new_pid = step.new_pid;
  }
  void OnFinished(const RolloutStep&) override { done_(result_); }
  void OnAborted(const RolloutStep& step) override {
    done_(absl::AbortedError(step.message));
  }

 private:
  const Done done_;
  RestartResult result_;
};

AgentMode ModeOf(const Supervisor& s) {
  if (s.shutting_down()) return AgentMode::kStopping;
  if (s.draining()) return AgentMode::kDraining;
  return AgentMode::kRunning;
}

}  // namespace

LoopControl::LoopControl(Parts parts) : parts_(std::move(parts)) {
  parts_.supervisor->SetRolloutObserver(this);
}

LoopControl::~LoopControl() { parts_.supervisor->SetRolloutObserver(nullptr); }

void LoopControl::OnEvent(const Event& event) {
  // A copy: an observer may remove itself (or another) while called.
  for (auto& [id, fn] : std::map(event_observers_)) fn(event);
}

void LoopControl::Post(std::function<void()> fn) { parts_.post(std::move(fn)); }

// --- reads -------------------------------------------------------------------

AgentStatus LoopControl::Status() const {
  const Supervisor& s = *parts_.supervisor;
  AgentStatus out;
  out.pid = SelfPid();
  out.mode = ModeOf(s);
  out.reloading = s.reloading();
  out.min_ready = parts_.options->min_ready;
  out.ready = s.Ready(out.min_ready);
  out.ready_workers = s.ReadyCount();
  out.target_workers = s.target_workers();
  out.auto_workers = parts_.rescaler->auto_mode();
  out.sizing = parts_.rescaler->state();
  out.counters = *parts_.counters;
  out.counters.log_lines_dropped = parts_.logger->dropped_total();
  out.counters.log_lines_dropped_by_source = parts_.logger->dropped_by_source();
  out.counters.memory_replacements = parts_.memory->replacements();
  for (const WorkerView& w : s.Workers()) {
    WorkerStatus ws{w, std::nullopt};
    if (w.pid != 0) ws.usage = parts_.memory->Usage(w.pid);
    out.workers.push_back(std::move(ws));
  }
  out.command = parts_.options->command;
  return out;
}

bool LoopControl::Ready() const {
  return parts_.supervisor->Ready(parts_.options->min_ready);
}

bool LoopControl::stopping() const {
  return parts_.supervisor->shutting_down();
}

absl::Status LoopControl::NoSuchWorker(int worker) const {
  return absl::NotFoundError(absl::StrFormat(
      "no worker %d: workers are numbered 0 to %d (see corralctl ps)", worker,
      parts_.supervisor->target_workers() - 1));
}

absl::Status LoopControl::CheckWorker(int worker) const {
  if (worker < 0 || worker >= parts_.supervisor->target_workers()) {
    return NoSuchWorker(worker);
  }
  return absl::OkStatus();
}

absl::StatusOr<WorkerDetails> LoopControl::DescribeWorker(int worker) const {
  if (absl::Status s = CheckWorker(worker); !s.ok()) return s;
  std::optional<WorkerView> current = CurrentView(worker);
  if (!current) return NoSuchWorker(worker);
  AgentStatus status = Status();
  WorkerDetails details;
  for (const WorkerStatus& w : status.workers) {
    if (w.view.slot == worker && w.view.pid == current->pid &&
        w.view.generation == current->generation) {
      details.status = w;
      break;
    }
  }
  if (current->pid != 0 && parts_.describe_process) {
    WorkerStatus found = std::move(details.status);
    details = parts_.describe_process(current->pid);
    details.status = std::move(found);
  }
  details.command = std::move(status.command);
  return details;
}

std::optional<WorkerView> LoopControl::CurrentView(int worker) const {
  // During a rollout the old process is STOPPING and the new one is not;
  // a slot being restarted has an entry with pid 0.
  std::optional<WorkerView> found;
  for (const WorkerView& w : parts_.supervisor->Workers()) {
    if (w.slot != worker) continue;
    if (!found || found->pid == 0 ||
        (found->state == WorkerState::kStopping && w.pid != 0)) {
      found = w;
    }
  }
  return found;
}

absl::StatusOr<pid_t> LoopControl::CurrentProcess(int worker) const {
  std::optional<WorkerView> found = CurrentView(worker);
  if (!found) return NoSuchWorker(worker);
  if (found->pid == 0) return NoProcess(*found);
  return found->pid;
}

absl::Status LoopControl::NoProcess(const WorkerView& w) const {
  switch (w.state) {
    case WorkerState::kStopped:
      if (parts_.supervisor->shutting_down()) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "worker %d is stopped: the agent is shutting down", w.slot));
      }
      return absl::FailedPreconditionError(absl::StrFormat(
          "worker %d is stopped: the workers are drained; `corralctl resume` "
          "brings them back",
          w.slot));
    case WorkerState::kFailed:
      return absl::FailedPreconditionError(absl::StrFormat(
          "worker %d has no process: the agent gave up on it (%s)", w.slot,
          w.last_exit));
    default:
      return absl::FailedPreconditionError(absl::StrFormat(
          "worker %d has no running process (it is %s); try again once it "
          "restarted",
          w.slot, WorkerStateName(w.state)));
  }
}

// --- commands ----------------------------------------------------------------

absl::StatusOr<ScaleResult> LoopControl::Scale(std::optional<int> workers,
                                               ScaleProgressFn progress) {
  ScaleResult result;
  result.previous_workers = parts_.supervisor->target_workers();
  if (absl::Status s = parts_.rescaler->ScaleTo(*parts_.supervisor, workers);
      !s.ok()) {
    return s;
  }
  result.target_workers = parts_.supervisor->target_workers();
  result.auto_workers = parts_.rescaler->auto_mode();
  const std::vector<WorkerView> now = parts_.supervisor->Workers();
  ScalePlan plan =
      PlanScale(result.previous_workers, result.target_workers, now);
  result.starting = plan.starting;
  result.stopping = plan.stopping;
  if (progress) {
    scales_.push_back(
        {ScaleTracker(std::move(plan), now), std::move(progress)});
  }
  return result;
}

void LoopControl::AfterEvent() {
  if (scales_.empty()) return;
  const Supervisor& s = *parts_.supervisor;
  const std::vector<WorkerView> workers = s.Workers();
  // By index: a callback only queues a message, it never scales.
  for (size_t i = 0; i < scales_.size(); ++i) {
    for (const ScaleStep& step : scales_[i].tracker.Update(
             workers, s.target_workers(), !s.draining())) {
      scales_[i].progress(step);
    }
  }
  std::erase_if(scales_,
                [](const FollowedScale& f) { return f.tracker.done(); });
}

absl::StatusOr<DrainResult> LoopControl::Drain() {
  if (absl::Status s = parts_.supervisor->Drain(); !s.ok()) return s;
  return DrainResult{parts_.options->drain_delay};
}

absl::Status LoopControl::Resume() { return parts_.supervisor->Resume(); }

void LoopControl::Shutdown(bool quick) {
  Supervisor& s = *parts_.supervisor;
  // Asking twice is never a second SIGTERM (which would cut the stop
  // timeout short); `quick` (corralctl stop --now) only skips the drain
  // delay: workers still get their --stop-timeout to finish.
  if (!s.shutting_down()) s.Shutdown(SIGTERM);
  if (quick) s.SkipDrainDelay();
}

absl::StatusOr<SignalResult> LoopControl::SignalWorker(int worker, int sig) {
  absl::StatusOr<pid_t> pid = CurrentProcess(worker);
  if (!pid.ok()) return pid.status();
  // The loop thread is the one that reaps, so `pid` cannot have been reaped
  // and reused between the lookup and the signal. The worker leads its
  // process group: the signal reaches a shell wrapper's children too.
  if (absl::Status s = parts_.signal_group(*pid, sig); !s.ok()) return s;
  return SignalResult{worker, *pid, sig};
}

absl::Status LoopControl::Reload(std::shared_ptr<RolloutObserver> observer) {
  // Set first: with nothing to roll, Reload() finishes before it returns.
  // A refusal (another rollout runs) puts that rollout's observer back.
  std::shared_ptr<RolloutObserver> running =
      std::exchange(rollout_, std::move(observer));
  absl::Status s = parts_.supervisor->Reload();
  if (!s.ok()) rollout_ = std::move(running);
  return s;
}

absl::Status LoopControl::RestartWorker(
    int worker, std::function<void(absl::StatusOr<RestartResult>)> done) {
  if (absl::Status s = CheckWorker(worker); !s.ok()) return s;
  // Set first: an exec failure aborts inside Replace() itself. A refusal
  // (another rollout runs) puts that rollout's observer back.
  std::shared_ptr<RolloutObserver> running = std::exchange(
      rollout_, std::make_shared<RestartWaiter>(worker, std::move(done)));
  absl::Status s = parts_.supervisor->Replace(worker, "restart");
  if (!s.ok()) rollout_ = std::move(running);
  return s;
}

// --- rollout progress --------------------------------------------------------

void LoopControl::OnStarted(const RolloutStep& step) {
  if (rollout_) rollout_->OnStarted(step);
}

void LoopControl::OnSlotDone(const RolloutStep& step) {
  if (rollout_) rollout_->OnSlotDone(step);
}

void LoopControl::OnFinished(const RolloutStep& step) {
  // Only one rollout runs at a time: the next one starts with no observer
  // unless its starter brings one.
  if (std::shared_ptr<RolloutObserver> o = std::exchange(rollout_, nullptr)) {
    o->OnFinished(step);
  }
}

void LoopControl::OnAborted(const RolloutStep& step) {
  if (std::shared_ptr<RolloutObserver> o = std::exchange(rollout_, nullptr)) {
    o->OnAborted(step);
  }
}

// --- subscriptions -----------------------------------------------------------

int LoopControl::AddEventObserver(std::function<void(const Event&)> fn) {
  event_observers_[next_observer_] = std::move(fn);
  return next_observer_++;
}

int LoopControl::AddLogObserver(std::function<void(const LogRecordPtr&)> fn) {
  parts_.output->AddObserver(next_observer_, std::move(fn));
  return next_observer_++;
}

void LoopControl::RemoveObserver(int id) {
  event_observers_.erase(id);
  parts_.output->RemoveObserver(id);
}

}  // namespace corral::agent
