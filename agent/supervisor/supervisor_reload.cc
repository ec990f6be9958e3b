// The Supervisor's rollouts: a rolling reload of every slot and the
// replacement of one slot (RestartWorker, a worker over its memory bound),
// one READY candidate at a time, reported to the RolloutObserver. SpawnSlot,
// MarkReady and HandleWorkerExit (supervisor.cc) move a rollout on or abort
// it. Split from supervisor.cc to keep each file readable; same class, same
// thread rules.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/supervisor/supervisor.h"

namespace corral::agent {

// --- rolling reload -------------------------------------------------------

RolloutStep Supervisor::Step(std::string message) const {
  RolloutStep step;
  step.reason = reload_->reason;
  step.total = static_cast<int>(reload_->slots.size());
  step.message = std::move(message);
  return step;
}

absl::Status Supervisor::CanRoll() const {
  if (mode_ == Mode::kShuttingDown) {
    return absl::FailedPreconditionError("the agent is shutting down");
  }
  if (mode_ == Mode::kDraining) {
    return absl::FailedPreconditionError(
        "workers are drained; resume before reloading (`corralctl resume` "
        "brings them back)");
  }
  if (reload_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("a %s is already in progress (at worker %d)",
                        reload_->reason, reload_->slot()));
  }
  return absl::OkStatus();
}

absl::Status Supervisor::Reload() {
  if (absl::Status s = CanRoll(); !s.ok()) return s;
  reload_ = ReloadState{};
  reload_->reason = "reload";
  for (int slot = 0; slot < target_; ++slot) reload_->slots.push_back(slot);
  const std::string msg =
      absl::StrFormat("rolling reload of %d worker(s)", target_);
  events_->Emit(Event{Level::kInfo, "reload_started", msg, {}});
  if (rollout_ != nullptr) rollout_->OnStarted(Step(msg));
  ReloadStep();
  return absl::OkStatus();
}

absl::Status Supervisor::Replace(int slot, const std::string& reason) {
  if (slot < 0 || slot >= target_) {
    return absl::NotFoundError(absl::StrFormat(
        "no worker %d: workers are numbered 0 to %d", slot, target_ - 1));
  }
  if (absl::Status s = CanRoll(); !s.ok()) return s;
  Process* current = Current(slot);
  if (current == nullptr || current->state != WorkerState::kReady) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "worker %d has no READY process to replace (it is %s); try again "
        "once it is READY",
        slot, current ? WorkerStateName(current->state) : "restarting"));
  }
  reload_ = ReloadState{};
  reload_->reason = reason;
  reload_->slots = {slot};
  if (rollout_ != nullptr) {
    // No event: the replacement's own events tell the story.
    rollout_->OnStarted(Step(absl::StrFormat("%s of worker %d", reason, slot)));
  }
  ReloadStep();
  return absl::OkStatus();
}

void Supervisor::ReloadStep() {
  while (reload_ && reload_->index < reload_->slots.size()) {
    const int slot = reload_->slot();
    Process* current = slot < target_ ? Current(slot) : nullptr;
    if (current == nullptr || current->state != WorkerState::kReady) {
      // Nothing serving in this slot: its next start runs the new code.
      reload_->index++;
      continue;
    }
    SpawnSlot(slot, /*replacement=*/true);
    return;  // wait for the candidate's READY (or failure)
  }
  if (!reload_) return;
  const RolloutStep step = Step(absl::StrCat(reload_->reason, " finished"));
  reload_.reset();
  events_->Emit(Event{Level::kInfo, "reload_finished", step.message, {}}.With(
      "reason", step.reason));
  if (rollout_ != nullptr) rollout_->OnFinished(step);
}

void Supervisor::ReloadAbort(const std::string& reason) {
  if (!reload_) return;
  const int slot = reload_->slot();
  RolloutStep step = Step("");
  step.worker = slot;
  if (reload_->candidate) {
    if (Process* c = Find(*reload_->candidate)) {
      c->replacement = false;
      Retire(*c);
    }
  }
  reload_.reset();
  Event e{Level::kError,
          "reload_aborted",
          absl::StrFormat("reload stopped at worker %d: %s; the old worker "
                          "keeps serving",
                          slot, reason),
          {}};
  e.With("worker", int64_t{slot}).With("reason", reason);
  events_->Emit(e);
  step.message = e.msg;
  if (rollout_ != nullptr) rollout_->OnAborted(step);
}

}  // namespace corral::agent
