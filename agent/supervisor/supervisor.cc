// The Supervisor's core: the process table, spawning, readiness, kills,
// exits and restarts, notify messages and deadlines (Tick). The rollouts are
// in supervisor_reload.cc, the commands that change how many workers run in
// supervisor_commands.cc, the queries in supervisor_queries.cc.
#include "agent/supervisor/supervisor.h"

#include <algorithm>
#include <csignal>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/signals.h"

namespace corral::agent {
namespace {

// A string, not common's const char*: an Event field of const char* could
// turn into a bool.
std::string SignalName(int sig) { return common::SignalName(sig); }

void AddExitFields(Event& e, ExitStatus status) {
  if (status.signal != 0) {
    e.With("signal", SignalName(status.signal));
  } else {
    e.With("code", int64_t{status.code});
  }
}

}  // namespace

Supervisor::Supervisor(SupervisorConfig config, Clock* clock,
                       ProcessControl* processes, EventSink* events,
                       std::function<double()> unit_random)
    : config_(std::move(config)),
      clock_(clock),
      processes_(processes),
      events_(events),
      unit_random_(std::move(unit_random)) {}

void Supervisor::Start() {
  target_ = std::max(config_.workers, 1);
  for (int slot = 0; slot < target_; ++slot) SpawnSlot(slot, false);
}

// --- process table --------------------------------------------------------

Supervisor::Process* Supervisor::Find(pid_t pid) {
  for (Process& p : procs_) {
    if (p.pid == pid) return &p;
  }
  return nullptr;
}

const Supervisor::Process* Supervisor::Find(pid_t pid) const {
  for (const Process& p : procs_) {
    if (p.pid == pid) return &p;
  }
  return nullptr;
}

Supervisor::Process* Supervisor::Current(int slot) {
  for (Process& p : procs_) {
    if (p.slot == slot && !p.retiring && !p.replacement) return &p;
  }
  return nullptr;
}

bool Supervisor::IsWorker(pid_t pid) const { return Find(pid) != nullptr; }

std::vector<pid_t> Supervisor::WorkerGroups() const {
  std::vector<pid_t> groups;
  for (const Process& p : procs_) groups.push_back(p.pid);
  return groups;
}

Event Supervisor::WorkerEvent(Level level, std::string name, std::string msg,
                              const Process& p) const {
  Event e{level, std::move(name), std::move(msg), {}};
  e.With("worker", int64_t{p.slot})
      .With("gen", int64_t{p.generation})
      .With("pid", int64_t{p.pid});
  return e;
}

// --- spawning and state changes ------------------------------------------

void Supervisor::SpawnSlot(int slot, bool replacement) {
  Slot& s = slots_[slot];
  s.generation++;
  s.restart_at.reset();
  const int generation = s.generation;
  absl::StatusOr<pid_t> pid = processes_->Spawn({slot, generation});
  if (!pid.ok()) {
    const int code = absl::IsNotFound(pid.status()) ? 127 : 126;
    s.last_exit = std::string(pid.status().message());
    Event e{Level::kError,
            "exec_failed",
            absl::StrFormat("worker %d: %s", slot, pid.status().message()),
            {}};
    e.With("worker", int64_t{slot})
        .With("gen", int64_t{generation})
        .With("code", int64_t{code});
    events_->Emit(e);
    if (replacement) {
      ReloadAbort(s.last_exit);
    } else {
      ScheduleRestart(slot, FailureKind::kCrash);
    }
    return;
  }
  Process p;
  p.slot = slot;
  p.generation = generation;
  p.pid = *pid;
  p.spawned_at = clock_->Now();
  p.last_ping = p.spawned_at;
  p.deadline = p.spawned_at + config_.ready_timeout;
  p.replacement = replacement;
  procs_.push_back(p);
  if (replacement) reload_->candidate = *pid;
  events_->Emit(
      WorkerEvent(Level::kInfo, "worker_spawned",
                  absl::StrFormat("worker %d (gen %d) started as pid %d", slot,
                                  generation, *pid),
                  p));
}

void Supervisor::MarkReady(Process& p) {
  const TimePoint now = clock_->Now();
  p.state = WorkerState::kReady;
  p.ready_at = now;
  p.last_ping = now;
  ever_ready_ = true;
  const double ms = ToMillis(now - p.spawned_at);
  events_->Emit(WorkerEvent(Level::kInfo, "worker_ready",
                            absl::StrFormat("worker %d (gen %d, pid %d) ready "
                                            "in %.1f ms",
                                            p.slot, p.generation, p.pid, ms),
                            p)
                    .With("ready_ms", ms));
  if (!p.replacement) return;

  // A reload candidate took over its slot: the old process goes.
  p.replacement = false;
  const int slot = p.slot;
  const pid_t new_pid = p.pid;
  pid_t old_pid = 0;
  for (Process& other : procs_) {
    if (other.slot == slot && other.pid != new_pid && !other.retiring &&
        !other.replacement) {
      old_pid = other.pid;
      Retire(other);
    }
  }
  slots_[slot].restart_at.reset();
  Event e{Level::kInfo,
          "reload_slot_done",
          absl::StrFormat("worker %d rolled: pid %d replaces %d", slot, new_pid,
                          old_pid),
          {}};
  e.With("worker", int64_t{slot})
      .With("old_pid", int64_t{old_pid})
      .With("new_pid", int64_t{new_pid})
      .With("reason", reload_->reason);
  events_->Emit(e);
  if (rollout_ != nullptr) {
    RolloutStep step = Step(e.msg);
    step.worker = slot;
    step.old_pid = old_pid;
    step.new_pid = new_pid;
    rollout_->OnSlotDone(step);
  }
  reload_->candidate.reset();
  reload_->index++;
  ReloadStep();
}

void Supervisor::Retire(Process& p) {
  if (p.retiring) return;
  p.retiring = true;
  p.scale_drain_until.reset();
  p.state = WorkerState::kStopping;
  p.deadline = clock_->Now() + config_.stop_timeout;
  processes_->SignalGroup(p.pid, config_.stop_signal);
  events_->Emit(
      WorkerEvent(Level::kInfo, "worker_stopping",
                  absl::StrFormat("worker %d (pid %d) sent %s", p.slot, p.pid,
                                  SignalName(config_.stop_signal)),
                  p)
          .With("signal", SignalName(config_.stop_signal)));
}

void Supervisor::Abort(Process& p) {
  const TimePoint now = clock_->Now();
  p.aborted = true;
  p.kill_reason = "watchdog";
  p.deadline = now + config_.abort_grace;
  NoteKill();
  processes_->SignalProcess(p.pid, SIGABRT);
  events_->Emit(
      WorkerEvent(Level::kWarn, "worker_killed",
                  absl::StrFormat("worker %d (pid %d) sent no WATCHDOG=1 for "
                                  "%.0f ms: SIGABRT, SIGKILL in %.0f ms",
                                  p.slot, p.pid, ToMillis(now - p.last_ping),
                                  ToMillis(config_.abort_grace)),
                  p)
          .With("reason", std::string("watchdog"))
          .With("signal", std::string("SIGABRT")));
}

void Supervisor::Kill(Process& p, const std::string& reason) {
  if (p.killed) return;
  p.killed = true;
  p.deadline = TimePoint::max();
  NoteKill();
  processes_->SignalGroup(p.pid, SIGKILL);
  if (p.aborted) {
    // worker_killed was already said at the SIGABRT.
    events_->Emit(WorkerEvent(
        Level::kWarn, "worker_escalated",
        absl::StrFormat("worker %d (pid %d) survived SIGABRT: SIGKILL", p.slot,
                        p.pid),
        p));
    return;
  }
  p.kill_reason = reason;
  events_->Emit(WorkerEvent(Level::kWarn, "worker_killed",
                            absl::StrFormat("worker %d (pid %d) killed: %s",
                                            p.slot, p.pid, reason),
                            p)
                    .With("reason", reason));
}

void Supervisor::NoteKill() {
  // Exit status 1 says a worker had to be killed while the agent shut down,
  // whatever killed it: the stop timeout, the watchdog or the ready timeout.
  if (mode_ == Mode::kShuttingDown) anything_killed_ = true;
}

bool Supervisor::OnExit(pid_t pid, ExitStatus status) {
  auto it = std::find_if(procs_.begin(), procs_.end(),
                         [pid](const Process& p) { return p.pid == pid; });
  if (it == procs_.end()) {
    MaybeFinish();
    return false;
  }
  const Process p = *it;
  procs_.erase(it);
  HandleWorkerExit(p, status);
  MaybeFinish();
  return true;
}

void Supervisor::HandleWorkerExit(const Process& p, ExitStatus status) {
  Slot& s = slots_[p.slot];
  s.last_exit = status.Describe();
  if (!p.kill_reason.empty()) {
    absl::StrAppend(&s.last_exit, " (", p.kill_reason, ")");
  }
  const bool planned = p.ready_at && p.said_stopping && status.Clean();
  const bool expected = p.retiring || planned;
  Event e =
      WorkerEvent(expected ? Level::kInfo : Level::kWarn, "worker_exited",
                  absl::StrFormat("worker %d (gen %d, pid %d) exited: %s",
                                  p.slot, p.generation, p.pid, s.last_exit),
                  p);
  AddExitFields(e, status);
  e.With("expected", expected);
  events_->Emit(e);

  if (p.replacement) {
    ReloadAbort(absl::StrCat("replacement pid ", p.pid,
                             " exited before READY: ", s.last_exit));
    return;
  }
  if (p.retiring) {
    if (p.slot >= target_) {
      // Scaled away: a later scale up starts clean (the generation goes on,
      // so "worker 1 gen 3" always names one process).
      s.consecutive_failures = 0;
      s.failed = false;
    }
    return;
  }
  if (p.ready_at && clock_->Now() - *p.ready_at >= config_.stable_period) {
    s.consecutive_failures = 0;
  }
  if (planned) {
    s.consecutive_failures = 0;
    ScheduleRestart(p.slot, std::nullopt);
    return;
  }
  FailureFacts facts;
  facts.status = status;
  facts.signalled_by_agent = p.killed || p.aborted;
  if (p.ready_at) facts.ready_for = clock_->Now() - *p.ready_at;
  facts.app_ever_ready = ever_ready_;
  ScheduleRestart(p.slot, ClassifyFailure(facts, config_.failures));
}

void Supervisor::ScheduleRestart(int slot, std::optional<FailureKind> failure) {
  Slot& s = slots_[slot];
  if (failure) s.consecutive_failures++;
  if (mode_ != Mode::kRunning || slot >= target_) return;
  RestartDecision decision;
  if (failure) {
    decision = DecideRestart(
        {*failure, s.consecutive_failures, target_, OthersInLongBackoff(slot)},
        config_.backoff, config_.failures, unit_random_);
  }
  s.restart_at = clock_->Now() + decision.delay;
  const std::string cause = failure ? FailureKindName(*failure) : "planned";
  Event e{Level::kInfo,
          "worker_restart_scheduled",
          absl::StrFormat("worker %d restarts in %.0f ms (%s%s)", slot,
                          ToMillis(decision.delay), cause,
                          decision.capacity_kept ? ", capacity kept" : ""),
          {}};
  e.With("worker", int64_t{slot})
      .With("delay_ms", ToMillis(decision.delay))
      .With("cause", cause);
  if (decision.capacity_kept) e.With("capacity_kept", true);
  events_->Emit(e);
  CheckGiveUp();
}

int Supervisor::OthersInLongBackoff(int slot) const {
  const TimePoint now = clock_->Now();
  int n = 0;
  for (const auto& [other, s] : slots_) {
    if (other == slot || other >= target_) continue;
    if (s.failed ||
        (s.restart_at && *s.restart_at - now > config_.backoff.min)) {
      ++n;
    }
  }
  return n;
}

void Supervisor::CheckGiveUp() {
  if (ever_ready_ || mode_ != Mode::kRunning) return;
  for (int slot = 0; slot < target_; ++slot) {
    if (slots_[slot].consecutive_failures < config_.give_up_failures) return;
  }
  for (auto& [slot, s] : slots_) {
    s.failed = true;
    s.restart_at.reset();
  }
  exit_code_ = 1;
  events_->Emit(Event{
      Level::kError,
      "gave_up",
      absl::StrFormat("giving up: no worker ever became ready; each of %d "
                      "slot(s) failed %d times in a row; last: %s",
                      target_, config_.give_up_failures, slots_[0].last_exit),
      {}});
  mode_ = Mode::kShuttingDown;
  BeginStopping();
  MaybeFinish();
}

// --- notify ---------------------------------------------------------------

void Supervisor::OnNotify(pid_t pid, const NotifyMessage& message) {
  Process* p = Find(pid);
  if (p == nullptr) return;
  const TimePoint now = clock_->Now();
  if (message.status && *message.status != p->status) {
    p->status = *message.status;
    events_->Emit(
        WorkerEvent(Level::kInfo, "worker_status",
                    absl::StrFormat("worker %d: %s", p->slot, p->status), *p)
            .With("status", p->status));
  }
  if (message.watchdog || message.ready) p->last_ping = now;
  if (message.extend_timeout && p->state != WorkerState::kReady && !p->killed) {
    // The parser refuses more than the limit, but a message may come from
    // elsewhere: clamp before adding, so now + extension cannot overflow.
    const Duration extend = std::clamp(*message.extend_timeout,
                                       Duration::zero(), kMaxExtendTimeout);
    p->deadline = std::max(p->deadline, now + extend);
  }
  if (message.stopping && !p->said_stopping) {
    p->said_stopping = true;
    if (p->state != WorkerState::kStopping) {
      p->state = WorkerState::kStopping;
      p->deadline = now + config_.stop_timeout;
    }
  }
  if (message.ready && p->state == WorkerState::kStarting) MarkReady(*p);
}

// --- time -----------------------------------------------------------------

void Supervisor::Tick() {
  const TimePoint now = clock_->Now();
  std::vector<pid_t> pids;
  for (const Process& p : procs_) pids.push_back(p.pid);
  for (pid_t pid : pids) {
    Process* p = Find(pid);
    if (p == nullptr || p->killed) continue;
    if (p->scale_drain_until && !p->retiring &&
        (now >= *p->scale_drain_until || queue_empty_(p->slot))) {
      p->scale_drain_until.reset();
      Retire(*p);
      continue;
    }
    switch (p->state) {
      case WorkerState::kStarting:
        if (config_.ready_delay &&
            now >= p->spawned_at + *config_.ready_delay) {
          MarkReady(*p);
        } else if (now >= p->deadline) {
          Kill(*p, "ready_timeout");
        }
        break;
      case WorkerState::kReady:
        if (config_.watchdog <= Duration::zero()) break;
        if (!p->aborted && now >= p->last_ping + config_.watchdog) {
          Abort(*p);
        } else if (p->aborted && now >= p->deadline) {
          Kill(*p, "watchdog");
        }
        break;
      case WorkerState::kStopping:
        if (now >= p->deadline) Kill(*p, "stop_timeout");
        break;
      default:
        break;
    }
  }
  std::vector<int> due;
  for (const auto& [slot, s] : slots_) {
    if (s.restart_at && *s.restart_at <= now) due.push_back(slot);
  }
  for (int slot : due) {
    slots_[slot].restarts++;
    SpawnSlot(slot, false);
  }
  if (phase_ == Phase::kDelay && now >= phase_deadline_) {
    BeginStopping();
  } else if (phase_ == Phase::kStopping && now >= phase_deadline_) {
    BeginKilling();
  } else if (phase_ == Phase::kKilling && now >= phase_deadline_) {
    if (mode_ == Mode::kShuttingDown) {
      events_->Emit(Event{Level::kError,
                          "reap_timeout",
                          "descendants still not reaped after SIGKILL; "
                          "exiting anyway",
                          {}});
      anything_killed_ = true;
      Finish();
    }
  }
  MaybeFinish();
}

std::optional<TimePoint> Supervisor::NextDeadline() const {
  std::optional<TimePoint> next;
  auto consider = [&next](TimePoint t) {
    if (t == TimePoint::max()) return;
    if (!next || t < *next) next = t;
  };
  for (const Process& p : procs_) {
    if (p.killed) continue;
    if (p.scale_drain_until) {
      consider(std::min(*p.scale_drain_until, clock_->Now() + kScaleDrainPoll));
    }
    if (p.state == WorkerState::kStarting && config_.ready_delay) {
      consider(p.spawned_at + *config_.ready_delay);
    }
    if (p.state == WorkerState::kReady) {
      if (p.aborted) {
        consider(p.deadline);
      } else if (config_.watchdog > Duration::zero()) {
        consider(p.last_ping + config_.watchdog);
      }
    } else {
      consider(p.deadline);
    }
  }
  for (const auto& [slot, s] : slots_) {
    if (s.restart_at) consider(*s.restart_at);
  }
  if (phase_ == Phase::kDelay || phase_ == Phase::kStopping ||
      phase_ == Phase::kKilling) {
    consider(phase_deadline_);
  }
  return next;
}

}  // namespace corral::agent
