// The worker count and the memory budget, kept in step with what the kernel
// says the container may use.
//
// Two jobs, one per method: Read() reads the sizing inputs through a
// CgroupReader and decides (worker count, per-worker memory bound);
// Apply() is the rescale policy under --workers=auto: a new count must hold
// for two reads in a row before the supervisor is scaled to it (a limit
// written in two steps must not make workers flap), and nothing is applied
// while the workers are drained or shutting down, or in fixed mode
// (--workers=N, or Scale to a number).
//
// Pure logic: no syscalls. The reader is injected (the agent passes
// ProcCgroupReader, tests a fake); what it decides is reported as Events.
// Loop thread only.
#ifndef CORRAL_AGENT_SUPERVISOR_CPU_RESCALER_H_
#define CORRAL_AGENT_SUPERVISOR_CPU_RESCALER_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/supervisor/event.h"
#include "agent/supervisor/sizing.h"
#include "agent/supervisor/supervisor.h"

namespace corral::agent {

class CpuRescaler {
 public:
  // `fixed_workers`: --workers=N; nullopt = auto. `reader` and `events` must
  // outlive this.
  CpuRescaler(CgroupReader* reader, const SizingPolicy& policy,
              const WorkerMemoryBound& memory_bound,
              std::optional<int> fixed_workers, EventSink* events);
  CpuRescaler(const CpuRescaler&) = delete;
  CpuRescaler& operator=(const CpuRescaler&) = delete;

  // The first read, at start: logs "sizing" (and "memory_budget" when there
  // is a bound), or "sizing_failed" when the limits cannot be read. Returns
  // the initial worker count: --workers=N, else the decision, else
  // `fallback` (the affinity count).
  int Start(int fallback);

  // Job 1: reads the inputs and decides for `workers` workers (the memory
  // budget is shared among them). Returns whether the inputs differ from
  // the last successful read; the reader's error otherwise (the last good
  // state is kept).
  absl::StatusOr<bool> Read(int workers);

  // Job 2: the rescale policy, once per read. Scales `supervisor` once the
  // decided count differs from its target for two reads in a row ("rescale";
  // "rescale_refused" when the supervisor says no).
  void Apply(Supervisor& supervisor);

  // Once a second: Read() for the supervisor's target, then Apply(). Inputs
  // that changed are logged as a new "sizing" decision (and its memory
  // budget), so a limit that changes under a running agent is visible even
  // when the count stays.
  void Poll(Supervisor& supervisor);

  // The Scale command: a count switches to fixed mode (InvalidArgument past
  // the scale ceiling, see DecideScaleCeiling), nullopt back to auto
  // (FailedPrecondition when the limits were never read). The supervisor's
  // own refusals are returned as they are.
  absl::Status ScaleTo(Supervisor& supervisor, std::optional<int> workers);

  // The most workers ScaleTo accepts now (it follows the usable CPUs).
  ScaleCeiling Ceiling() const;

  const SizingState& state() const { return state_; }
  bool auto_mode() const { return state_.auto_mode; }

 private:
  int StartCount(int fallback);
  void LogDecision();

  // Constant after construction.
  CgroupReader* const reader_;
  const SizingPolicy policy_;
  const WorkerMemoryBound memory_bound_;
  const std::optional<int> fixed_workers_;
  EventSink* const events_;

  SizingState state_;
  // Start(): the affinity fallback (usable CPUs when nothing was read) and
  // the initial worker count.
  int fallback_cpus_ = 1;
  int start_workers_ = 1;
  std::optional<int> pending_;  // an auto count seen once, not yet applied
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_CPU_RESCALER_H_
