#include "agent/supervisor/cpu_rescaler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace corral::agent {

CpuRescaler::CpuRescaler(CgroupReader* reader, const SizingPolicy& policy,
                         const WorkerMemoryBound& memory_bound,
                         std::optional<int> fixed_workers, EventSink* events)
    : reader_(reader),
      policy_(policy),
      memory_bound_(memory_bound),
      fixed_workers_(fixed_workers),
      events_(events) {
  state_.auto_mode = !fixed_workers.has_value();
}

int CpuRescaler::Start(int fallback) {
  fallback_cpus_ = std::max(fallback, 1);
  start_workers_ = StartCount(fallback);
  return start_workers_;
}

int CpuRescaler::StartCount(int fallback) {
  // The budget is shared among the workers the agent starts with: the
  // fixed count, or the count this very read decides.
  absl::StatusOr<bool> read = Read(fixed_workers_.value_or(0));
  if (!read.ok()) {
    events_->Emit(Event{
        Level::kWarn,
        "sizing_failed",
        absl::StrCat("cannot read the CPU limits (", read.status().message(),
                     "); using the affinity mask"),
        {}});
    return fixed_workers_.value_or(fallback);
  }
  LogDecision();
  return fixed_workers_.value_or(state_.decision->workers);
}

absl::StatusOr<bool> CpuRescaler::Read(int workers) {
  absl::StatusOr<SizingInputs> inputs = reader_->Read();
  if (!inputs.ok()) return inputs.status();
  const bool changed = !state_.inputs || !(*state_.inputs == *inputs);
  state_.inputs = *std::move(inputs);
  state_.decision = DecideWorkers(*state_.inputs, policy_);
  if (workers <= 0) workers = state_.decision->workers;
  state_.memory =
      DecideMemoryBudget(*state_.inputs, std::max(workers, 1), memory_bound_);
  return changed;
}

void CpuRescaler::Apply(Supervisor& supervisor) {
  if (!state_.decision || !state_.auto_mode || supervisor.draining()) {
    pending_.reset();
    return;
  }
  const int decided = state_.decision->workers;
  if (decided == supervisor.target_workers()) {
    pending_.reset();
    return;
  }
  // A new count must hold for two reads before it is applied, so a limit
  // written in two steps does not make workers flap.
  if (pending_ != decided) {
    pending_ = decided;
    return;
  }
  pending_.reset();
  events_->Emit(Event{
      Level::kInfo,
      "rescale",
      absl::StrFormat("CPU limit changed: %s", state_.decision->explanation),
      {}}.With("from", int64_t{supervisor.target_workers()})
                    .With("to", int64_t{decided}));
  if (absl::Status s = supervisor.Scale(decided); !s.ok()) {
    events_->Emit(
        Event{Level::kWarn, "rescale_refused", std::string(s.message()), {}});
  }
}

void CpuRescaler::Poll(Supervisor& supervisor) {
  absl::StatusOr<bool> changed = Read(supervisor.target_workers());
  // An unreadable limit keeps the last decision; the start-up read already
  // said when the limits cannot be read at all.
  if (!changed.ok()) return;
  if (*changed) LogDecision();
  Apply(supervisor);
}

absl::Status CpuRescaler::ScaleTo(Supervisor& supervisor,
                                  std::optional<int> workers) {
  if (!workers) {
    if (!state_.decision) {
      return absl::FailedPreconditionError(
          "the CPU limit could not be read; scale to a number instead");
    }
    if (absl::Status s = supervisor.Scale(state_.decision->workers); !s.ok()) {
      return s;
    }
    state_.auto_mode = true;
    pending_.reset();
    return absl::OkStatus();
  }
  const ScaleCeiling ceiling = Ceiling();
  if (*workers > ceiling.workers) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cannot scale to %d workers: %s", *workers, ceiling.why));
  }
  if (absl::Status s = supervisor.Scale(*workers); !s.ok()) return s;
  state_.auto_mode = false;
  return absl::OkStatus();
}

ScaleCeiling CpuRescaler::Ceiling() const {
  const int cpus =
      state_.decision ? state_.decision->usable_cpus : fallback_cpus_;
  return DecideScaleCeiling(policy_, cpus, start_workers_);
}

void CpuRescaler::LogDecision() {
  const WorkerCount& decision = *state_.decision;
  events_->Emit(Event{Level::kInfo, "sizing", decision.explanation, {}}
                    .With("workers", int64_t{decision.workers})
                    .With("auto", state_.auto_mode)
                    .With("rule", std::string(SizingRuleName(decision.rule))));
  if (state_.memory && state_.memory->per_worker_bytes) {
    events_->Emit(Event{
        Level::kInfo,
        "memory_budget",
        state_.memory->explanation,
        {}}.With("bytes", *state_.memory->per_worker_bytes));
  }
}

}  // namespace corral::agent
