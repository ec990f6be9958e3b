// The supervisor: the worker table and every lifecycle decision (restart,
// backoff, readiness, watchdog, rolling reload, scale, drain, shutdown).
//
// Pure logic: it never calls the kernel. Processes are reached through
// ProcessControl, time through Clock, and everything it decides is reported
// as Events. It is driven by its owner calling the On*() methods and Tick()
// at NextDeadline(); all calls must come from one thread.
//
// One class, four source files: supervisor.cc (the core), supervisor_reload.cc
// (rollouts), supervisor_commands.cc (scale, drain, resume, shutdown) and
// supervisor_queries.cc.
#ifndef CORRAL_AGENT_SUPERVISOR_SUPERVISOR_H_
#define CORRAL_AGENT_SUPERVISOR_SUPERVISOR_H_

#include <sys/types.h>

#include <csignal>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/supervisor/clock.h"
#include "agent/supervisor/defaults.h"
#include "agent/supervisor/event.h"
#include "agent/supervisor/notify_message.h"
#include "agent/supervisor/process_control.h"
#include "agent/supervisor/restart_policy.h"
#include "agent/supervisor/rollout.h"
#include "agent/supervisor/worker.h"

namespace corral::agent {

struct SupervisorConfig {
  // Number of worker slots at start.
  int workers = 1;
  // READY comes from the worker (notify / ipc) unless ready_delay is set:
  // then a worker is READY once it has lived that long.
  std::optional<Duration> ready_delay;
  // A worker not READY this long after spawn is killed (a failure).
  Duration ready_timeout = kDefaultReadyTimeout;
  // The graceful stop (reload, drain, scale down, shutdown): --stop-signal.
  // The forced stop after stop_timeout is always SIGKILL.
  int stop_signal = SIGTERM;
  // stop_signal to SIGKILL for a worker being stopped.
  Duration stop_timeout = kDefaultStopTimeout;
  // Not-ready before the first SIGTERM on drain and shutdown.
  Duration drain_delay = kDefaultDrainDelay;
  // A READY worker silent longer than this is hung; zero = off.
  Duration watchdog = kDefaultWatchdog;
  // After SIGABRT for a hung worker, SIGKILL follows after this long.
  Duration abort_grace = std::chrono::seconds(3);
  BackoffOptions backoff;
  // Crash loop or external failure, and the capacity guard
  // (docs/restart-policy.md).
  FailurePolicy failures;
  // A worker READY this long has its failure count reset.
  Duration stable_period = std::chrono::seconds(10);
  // With no worker ever READY, the agent gives up once every slot failed
  // this many times in a row.
  int give_up_failures = 5;
  // After the final SIGKILL, how long to wait for descendants to be reaped.
  Duration reap_grace = std::chrono::seconds(5);
};

class Supervisor {
 public:
  Supervisor(SupervisorConfig config, Clock* clock, ProcessControl* processes,
             EventSink* events, std::function<double()> unit_random);
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Spawns the initial workers.
  void Start();
  // Receives the progress of every rollout from now on (nullptr: none).
  // Must outlive the supervisor or be reset.
  void SetRolloutObserver(RolloutObserver* observer) { rollout_ = observer; }
  // With per-slot listening sockets, a READY worker scaled away keeps
  // running (no new connections reach it) until `queue_empty(slot)` says
  // its accept queue is empty, at most `bound`, and only then gets SIGTERM.
  // Polled every kScaleDrainPoll. Unset: SIGTERM at once.
  static constexpr Duration kScaleDrainPoll = std::chrono::milliseconds(20);
  void SetScaleDrain(std::function<bool(int slot)> queue_empty,
                     Duration bound) {
    queue_empty_ = std::move(queue_empty);
    scale_drain_bound_ = bound;
  }

  // --- inputs ------------------------------------------------------------
  // A reaped child. Returns false when `pid` was not a worker (an adopted
  // orphan): the caller counts it, the supervisor ignores it.
  bool OnExit(pid_t pid, ExitStatus status);
  // A notify datagram already attributed to worker `pid`.
  void OnNotify(pid_t pid, const NotifyMessage& message);
  // Time has passed: act on every deadline due at Clock::Now().
  void Tick();
  // The earliest moment Tick() has something to do.
  std::optional<TimePoint> NextDeadline() const;

  // --- commands ----------------------------------------------------------
  // Rolling reload. FailedPrecondition while draining, stopping or when a
  // reload already runs.
  absl::Status Reload();
  // Graceful replacement of one slot, as a one-slot reload (used for
  // RestartWorker and for a worker over its memory bound). NotFound for an
  // unknown slot; FailedPrecondition when it has no READY process or a
  // reload runs.
  absl::Status Replace(int slot, const std::string& reason);
  // SIGTERM/SIGINT. A second call cuts the drain short: the drain delay if
  // it still runs, else the stop timeout (SIGKILL now).
  void Shutdown(int signal);
  // Skips what is left of the drain delay of a shutdown or drain: SIGTERM
  // to every worker now, the stop timeout still applies. Unlike a second
  // Shutdown() it never leads to SIGKILL, so a repeated request is
  // harmless (`corralctl stop --now`). False when no drain delay ran.
  bool SkipDrainDelay();
  // Sends `sig` to every live worker's process group; returns how many.
  int ForwardSignal(int sig);
  // Sets the number of slots: up forks, down stops the highest slots.
  absl::Status Scale(int workers);
  // Readiness off now; workers stopped after the drain delay; agent stays.
  absl::Status Drain();
  // Leaves the drained state: slots are started again.
  absl::Status Resume();

  // READY workers that take no connection while connections wait for them
  // (AcceptWatch decides): they stop counting as ready, and Workers() shows
  // them with `accepting` false, until the next call leaves them out.
  void SetNotAccepting(const std::vector<pid_t>& pids);

  // --- queries -----------------------------------------------------------
  bool IsWorker(pid_t pid) const;
  // Process groups of every live worker process.
  std::vector<pid_t> WorkerGroups() const;
  // Ready to serve: running (not draining/stopping) and at least
  // `min_ready` workers READY (and accepting, see SetNotAccepting).
  bool Ready(int min_ready = 1) const;
  int ReadyCount() const;
  int target_workers() const { return target_; }
  bool draining() const { return mode_ != Mode::kRunning; }
  bool shutting_down() const { return mode_ == Mode::kShuttingDown; }
  // Shutting down past the drain delay: every worker has had the stop
  // signal (or SIGKILL) and no worker will be started again.
  bool stopping_for_good() const {
    return mode_ == Mode::kShuttingDown && phase_ != Phase::kNone &&
           phase_ != Phase::kDelay;
  }
  bool reloading() const { return reload_.has_value(); }
  // True once the agent should exit; exit_code() then says with what.
  bool done() const { return phase_ == Phase::kDone; }
  int exit_code() const { return exit_code_; }
  std::vector<WorkerView> Workers() const;

 private:
  enum class Mode { kRunning, kDraining, kShuttingDown };
  // Where a drain or shutdown is: waiting out the drain delay, waiting for
  // workers after SIGTERM, waiting for the last reaps after SIGKILL.
  enum class Phase { kNone, kDelay, kStopping, kKilling, kDone };

  struct Process {
    int slot = 0;
    int generation = 0;
    pid_t pid = 0;
    WorkerState state = WorkerState::kStarting;
    TimePoint spawned_at;
    std::optional<TimePoint> ready_at;
    TimePoint last_ping;
    TimePoint deadline;          // ready timeout, stop timeout or abort grace
    bool retiring = false;       // stopped on purpose; its exit is expected
    bool replacement = false;    // reload candidate, not yet the slot's own
    bool said_stopping = false;  // sent STOPPING=1 itself
    bool aborted = false;        // watchdog sent SIGABRT
    // Scaled away, waiting for its accept queue to empty before SIGTERM.
    std::optional<TimePoint> scale_drain_until;
    bool killed = false;         // we sent SIGKILL
    bool not_accepting = false;  // READY, but its connections wait
    std::string kill_reason;
    std::string status;
  };

  struct Slot {
    int generation = 0;
    int consecutive_failures = 0;
    int restarts = 0;
    std::optional<TimePoint> restart_at;  // BACKOFF until then
    bool failed = false;
    std::string last_exit;
  };

  struct ReloadState {
    std::vector<int> slots;          // slots to roll, in order
    size_t index = 0;                // the one being rolled
    std::optional<pid_t> candidate;  // its replacement process
    std::string reason;              // "reload", "restart", "memory"
    int slot() const { return index < slots.size() ? slots[index] : -1; }
  };

  // Process table helpers.
  Process* Find(pid_t pid);
  const Process* Find(pid_t pid) const;
  Process* Current(int slot);  // the slot's own, non-retiring process
  Event WorkerEvent(Level level, std::string name, std::string msg,
                    const Process& p) const;
  // The rollout in progress as a step, with `message`.
  RolloutStep Step(std::string message) const;

  void SpawnSlot(int slot, bool replacement);
  void MarkReady(Process& p);
  void Retire(Process& p);
  // The only ways the supervisor kills: Abort() sends the watchdog's SIGABRT
  // to the worker, Kill() SIGKILL to its group (an escalation after Abort()).
  // Both count for the exit status during a shutdown.
  void Abort(Process& p);
  void Kill(Process& p, const std::string& reason);
  void NoteKill();
  void HandleWorkerExit(const Process& p, ExitStatus status);
  // `failure` is empty for a planned exit (STOPPING=1, then exit 0).
  void ScheduleRestart(int slot, std::optional<FailureKind> failure);
  int OthersInLongBackoff(int slot) const;
  void CheckGiveUp();

  absl::Status CanRoll() const;
  void ReloadStep();
  void ReloadAbort(const std::string& reason);

  void BeginStopping();
  void BeginKilling();
  void MaybeFinish();
  void Finish();

  // Constant after construction.
  const SupervisorConfig config_;
  Clock* const clock_;
  ProcessControl* const processes_;
  EventSink* const events_;
  const std::function<double()> unit_random_;
  RolloutObserver* rollout_ = nullptr;
  std::function<bool(int slot)> queue_empty_;
  Duration scale_drain_bound_ = Duration::zero();

  int target_ = 0;
  std::map<int, Slot> slots_;
  std::vector<Process> procs_;
  bool ever_ready_ = false;
  std::optional<ReloadState> reload_;
  Mode mode_ = Mode::kRunning;
  Phase phase_ = Phase::kNone;
  TimePoint phase_deadline_;
  bool anything_killed_ = false;
  int exit_code_ = 0;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_SUPERVISOR_H_
