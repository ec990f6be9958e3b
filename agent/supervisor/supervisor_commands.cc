// The Supervisor's commands that change how many workers run: Scale, Drain,
// Resume, Shutdown and the stop sequence they share (drain delay, the stop
// signal, SIGKILL after the stop timeout, the last reaps). Split from
// supervisor.cc to keep each file readable; same class, same thread rules.
#include <algorithm>
#include <csignal>

#include "absl/strings/str_format.h"
#include "agent/supervisor/supervisor.h"
#include "common/signals.h"

namespace corral::agent {
namespace {

std::string SignalName(int sig) { return common::SignalName(sig); }

}  // namespace

// --- scale, drain, resume, signals ---------------------------------------

absl::Status Supervisor::Scale(int workers) {
  if (workers < 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cannot scale to %d workers: the minimum is 1 (use drain to stop "
        "every worker)",
        workers));
  }
  if (mode_ != Mode::kRunning) {
    return absl::FailedPreconditionError(
        "cannot scale while draining or shutting down; resume first");
  }
  const int old = target_;
  target_ = workers;
  events_->Emit(Event{Level::kInfo,
                      "scaled",
                      absl::StrFormat("workers %d -> %d", old, workers),
                      {}}
                    .With("from", int64_t{old})
                    .With("to", int64_t{workers}));
  for (auto& [slot, s] : slots_) {
    if (slot >= target_) s.restart_at.reset();
  }
  // A roll in progress on a slot that goes away stops here (its candidate
  // is retired by the abort).
  if (reload_ && reload_->slot() >= target_ && reload_->candidate) {
    ReloadAbort(absl::StrFormat("worker %d scaled away", reload_->slot()));
  }
  for (Process& p : procs_) {
    if (p.slot >= target_ && !p.retiring) {
      if (queue_empty_ && p.state == WorkerState::kReady && !p.replacement) {
        p.scale_drain_until = clock_->Now() + scale_drain_bound_;
      } else {
        Retire(p);
      }
    }
  }
  for (int slot = old; slot < target_; ++slot) {
    // Scaled back up while still draining: it keeps its slot.
    if (Process* p = Current(slot); p != nullptr) p->scale_drain_until.reset();
    if (Current(slot) == nullptr && !slots_[slot].restart_at) {
      slots_[slot].consecutive_failures = 0;
      slots_[slot].failed = false;
      SpawnSlot(slot, false);
    }
  }
  return absl::OkStatus();
}

int Supervisor::ForwardSignal(int sig) {
  int count = 0;
  for (const Process& p : procs_) {
    if (p.killed) continue;
    processes_->SignalGroup(p.pid, sig);
    ++count;
  }
  events_->Emit(Event{
      Level::kInfo,
      "signal_forwarded",
      absl::StrFormat("%s sent to %d worker group(s)", SignalName(sig), count),
      {}}.With("signal", SignalName(sig))
                    .With("workers", int64_t{count}));
  return count;
}

absl::Status Supervisor::Drain() {
  if (mode_ == Mode::kShuttingDown) {
    return absl::FailedPreconditionError("the agent is shutting down");
  }
  if (mode_ == Mode::kDraining) {
    return absl::FailedPreconditionError("workers are already draining");
  }
  mode_ = Mode::kDraining;
  if (reload_) ReloadAbort("drain requested");
  for (auto& [slot, s] : slots_) s.restart_at.reset();
  phase_ = Phase::kDelay;
  phase_deadline_ = clock_->Now() + config_.drain_delay;
  events_->Emit(Event{Level::kInfo,
                      "drain_started",
                      absl::StrFormat("not ready; stopping workers (%s) in "
                                      "%.0f ms",
                                      SignalName(config_.stop_signal),
                                      ToMillis(config_.drain_delay)),
                      {}});
  if (config_.drain_delay <= Duration::zero()) BeginStopping();
  MaybeFinish();
  return absl::OkStatus();
}

absl::Status Supervisor::Resume() {
  if (mode_ != Mode::kDraining) {
    return absl::FailedPreconditionError(mode_ == Mode::kRunning
                                             ? "workers are not drained"
                                             : "the agent is shutting down");
  }
  mode_ = Mode::kRunning;
  phase_ = Phase::kNone;
  events_->Emit(Event{Level::kInfo, "resumed", "starting workers again", {}});
  for (int slot = 0; slot < target_; ++slot) {
    if (Current(slot) == nullptr) {
      slots_[slot].consecutive_failures = 0;
      slots_[slot].failed = false;
      SpawnSlot(slot, false);
    }
  }
  return absl::OkStatus();
}

// --- shutdown -------------------------------------------------------------

void Supervisor::Shutdown(int signal) {
  if (mode_ == Mode::kShuttingDown) {
    if (phase_ == Phase::kDone) return;
    events_->Emit(Event{Level::kWarn,
                        "shutdown_hurried",
                        absl::StrFormat("second %s: cutting the drain short",
                                        SignalName(signal)),
                        {}});
    if (phase_ == Phase::kDelay || phase_ == Phase::kNone) {
      BeginStopping();
    } else if (phase_ == Phase::kStopping) {
      BeginKilling();
    }
    MaybeFinish();
    return;
  }
  const bool was_drained = mode_ == Mode::kDraining;
  mode_ = Mode::kShuttingDown;
  events_->Emit(Event{
      Level::kInfo,
      "shutdown_started",
      absl::StrFormat("%s: draining for %.0f ms, then "
                      "stopping workers",
                      SignalName(signal), ToMillis(config_.drain_delay)),
      {}}.With("signal", SignalName(signal)));
  if (reload_) ReloadAbort("shutting down");
  for (auto& [slot, s] : slots_) s.restart_at.reset();
  if (!was_drained || phase_ == Phase::kNone) {
    if (procs_.empty()) {
      BeginStopping();
    } else if (phase_ == Phase::kNone) {
      phase_ = Phase::kDelay;
      phase_deadline_ = clock_->Now() + config_.drain_delay;
      if (config_.drain_delay <= Duration::zero()) BeginStopping();
    }
  }
  MaybeFinish();
}

bool Supervisor::SkipDrainDelay() {
  if (phase_ != Phase::kDelay) return false;
  events_->Emit(Event{Level::kInfo,
                      "drain_delay_skipped",
                      absl::StrFormat("drain delay skipped: workers get "
                                      "%s now, SIGKILL after %.0f ms",
                                      SignalName(config_.stop_signal),
                                      ToMillis(config_.stop_timeout)),
                      {}});
  BeginStopping();
  MaybeFinish();
  return true;
}

void Supervisor::BeginStopping() {
  phase_ = Phase::kStopping;
  phase_deadline_ = clock_->Now() + config_.stop_timeout;
  for (Process& p : procs_) {
    p.replacement = false;
    Retire(p);
  }
  if (mode_ == Mode::kShuttingDown) {
    processes_->SignalStrays(config_.stop_signal, WorkerGroups());
  }
}

void Supervisor::BeginKilling() {
  phase_ = Phase::kKilling;
  phase_deadline_ = clock_->Now() + config_.reap_grace;
  for (Process& p : procs_) Kill(p, "stop_timeout");
  if (mode_ == Mode::kShuttingDown) {
    const int strays = processes_->SignalStrays(SIGKILL, {});
    if (strays > 0) {
      anything_killed_ = true;
      events_->Emit(Event{
          Level::kWarn,
          "strays_killed",
          absl::StrFormat("%d other descendant(s) killed", strays),
          {}}.With("count", int64_t{strays}));
    }
  }
}

void Supervisor::MaybeFinish() {
  if (!procs_.empty() || phase_ == Phase::kDone) return;
  if (mode_ == Mode::kDraining &&
      (phase_ == Phase::kStopping || phase_ == Phase::kKilling)) {
    phase_ = Phase::kNone;
    events_->Emit(Event{Level::kInfo,
                        "drain_finished",
                        "every worker stopped; the agent stays up",
                        {}});
    return;
  }
  if (mode_ != Mode::kShuttingDown) return;
  if (phase_ == Phase::kDelay || phase_ == Phase::kNone) {
    BeginStopping();
  }
  if (processes_->HasChildren()) return;  // adopted processes still live
  Finish();
}

void Supervisor::Finish() {
  phase_ = Phase::kDone;
  if (anything_killed_) exit_code_ = 1;
  events_->Emit(Event{Level::kInfo,
                      "shutdown_finished",
                      absl::StrFormat("exiting with status %d", exit_code_),
                      {}}
                    .With("exit_code", int64_t{exit_code_})
                    .With("killed", anything_killed_));
}

}  // namespace corral::agent
