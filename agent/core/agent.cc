#include "agent/core/agent.h"

#include <signal.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/core/node_options.h"
#include "agent/os/procfs.h"
#include "agent/os/reaper.h"
#include "agent/os/self.h"
#include "agent/supervisor/ipc_message.h"

namespace corral::agent {
namespace {

// Variables the agent sets for each worker; inherited copies are removed.
constexpr std::string_view kOwnVariables[] = {
    "LISTEN_FDS=",
    "LISTEN_PID=",
    "LISTEN_FDNAMES=",
    "NOTIFY_SOCKET=",
    "WATCHDOG_USEC=",
    "WATCHDOG_PID=",
    "CORRAL_WORKER_ID=",
    "CORRAL_WORKER_GENERATION=",
    "NODE_APP_INSTANCE=",
    "NODE_CHANNEL_FD=",
    "NODE_CHANNEL_SERIALIZATION_MODE="};

SupervisorConfig MakeConfig(const Options& o, int workers) {
  SupervisorConfig c;
  c.workers = workers;
  if (o.ready == ReadyMode::kDelay) c.ready_delay = o.ready_delay;
  c.ready_timeout = o.ready_timeout;
  c.stop_signal = o.stop_signal;
  c.stop_timeout = o.stop_timeout;
  c.drain_delay = o.drain_delay;
  c.watchdog = o.watchdog;
  c.backoff = o.backoff;
  return c;
}

}  // namespace

Agent::Agent(Options options, SignalFd signals, LogWriter* writer,
             CgroupReader* cgroups)
    : options_(std::move(options)),
      signals_(std::move(signals)),
      signal_watch_(io_),
      deadline_timer_(io_),
      housekeeping_timer_(io_),
      accept_timer_(io_),
      logger_(options_.log_format, writer),
      output_(
          &io_, &logger_,
          [this](pid_t pid, std::string_view line) { OnIpcLine(pid, line); }),
      rescaler_(cgroups, options_.sizing, options_.max_worker_memory,
                options_.workers, &logger_),
      memory_(&logger_) {
  logger_.AddObserver([this](const Event& e) {
    if (control_) control_->OnEvent(e);
  });
}

Agent::~Agent() {
  control_.reset();  // before the supervisor it observes
  // The descriptors below are owned elsewhere: release, don't close.
  signal_watch_.release();
  if (notify_watch_) notify_watch_->release();
  listeners_.reset();
}

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(Options options,
                                                     SignalFd signals,
                                                     LogWriter* writer,
                                                     CgroupReader* cgroups) {
  std::unique_ptr<Agent> agent(
      new Agent(std::move(options), std::move(signals), writer, cgroups));
  if (absl::Status s = agent->Open(); !s.ok()) return s;
  return agent;
}

absl::Status Agent::Open() {
  if (absl::Status s = BecomeSubreaperUnlessInit(); !s.ok()) return s;
  std::vector<std::string> names;
  for (const ListenSpec& spec : options_.listen) names.push_back(spec.name);
  listeners_ = std::make_unique<Balancer>(options_.balance, &logger_);
  if (absl::Status s = listeners_->Open(options_.listen); !s.ok()) return s;
  listen_names_ = absl::StrJoin(names, ":");
  absl::StatusOr<NotifySocket> notify = NotifySocket::Create(kMaxNotifyMessage);
  if (!notify.ok()) return notify.status();
  notify_.emplace(std::move(*notify));
  WorkerCommand command;
  command.argv = options_.command;
  command.env = BaseEnvironment();
  command.slot_fds = [this](int slot) { return listeners_->FdsFor(slot); };
  command.node_ipc = options_.ready == ReadyMode::kIpc;
  absl::StatusOr<std::unique_ptr<PosixProcessControl>> processes =
      PosixProcessControl::Create(
          std::move(command),
          [this](const SpawnRequest& r, pid_t pid, const WorkerPipes& p) {
            output_.Watch(r, pid, p);
          },
          [this](const absl::Status& s) { OnSignalFailed(s); });
  if (!processes.ok()) return processes.status();
  processes_ = std::move(*processes);
  const int workers = initial_workers_ =
      rescaler_.Start(/*fallback=*/AffinityCpuCount());

  signal_watch_.assign(signals_.fd());
  notify_watch_.emplace(io_, notify_->fd());
  std::random_device seed;
  auto rng = std::make_shared<std::mt19937_64>(seed());
  supervisor_ = std::make_unique<Supervisor>(
      MakeConfig(options_, workers), &clock_, processes_.get(), &logger_,
      [rng] { return std::uniform_real_distribution<double>(0, 1)(*rng); });
  if (options_.balance != BalanceMode::kShared) {
    // A scaled-away worker empties its own queue before SIGTERM.
    supervisor_->SetScaleDrain(
        [this](int slot) { return listeners_->QueueEmpty(slot); },
        options_.stop_timeout);
  }
  if (options_.accept_stall > Duration::zero() && listeners_->size() > 0) {
    accept_watch_.emplace(options_.accept_stall, &logger_);
  }
  LoopControl::Parts parts;
  parts.options = &options_;
  parts.clock = &clock_;
  parts.supervisor = supervisor_.get();
  parts.rescaler = &rescaler_;
  parts.memory = &memory_;
  parts.output = &output_;
  parts.logger = &logger_;
  parts.counters = &counters_;
  parts.post = [this](std::function<void()> fn) {
    boost::asio::post(io_, [this, fn = std::move(fn)] {
      fn();
      AfterEvent();
    });
  };
  parts.signal_group = [this](pid_t pgid, int sig) {
    return processes_->SignalGroupChecked(pgid, sig);
  };
  parts.describe_process = [](pid_t pid) {
    ProcessFacts facts = ReadProcessFacts(pid);
    WorkerDetails details;
    details.env_names = std::move(facts.env_names);
    details.open_fds = facts.open_fds;
    details.cwd = std::move(facts.cwd);
    details.exe = std::move(facts.exe);
    return details;
  };
  control_ = std::make_unique<LoopControl>(std::move(parts));
  return absl::OkStatus();
}

std::vector<std::string> Agent::BaseEnvironment() const {
  std::vector<std::string> env;
  for (std::string& entry : InheritedEnvironment()) {
    bool own = false;
    for (std::string_view prefix : kOwnVariables) {
      own = own || entry.starts_with(prefix);
    }
    if (!own) env.push_back(std::move(entry));
  }
  if (!options_.node_register.empty()) {
    AddNodeRequire(env, options_.node_register);
  }
  env.push_back(absl::StrCat("NOTIFY_SOCKET=", notify_->address()));
  if (listeners_->size() > 0) {
    env.push_back(absl::StrCat("LISTEN_FDS=", listeners_->size()));
    env.push_back(absl::StrCat("LISTEN_FDNAMES=", listen_names_));
    env.push_back("LISTEN_PID=");  // the child writes its own pid here
  }
  if (options_.watchdog > Duration::zero()) {
    env.push_back(absl::StrCat(
        "WATCHDOG_USEC=",
        std::chrono::duration_cast<std::chrono::microseconds>(options_.watchdog)
            .count()));
    env.push_back("WATCHDOG_PID=");
  }
  return env;
}

// --- processes ------------------------------------------------------------

void Agent::OnSignalFailed(const absl::Status& status) {
  logger_.Emit(
      Event{Level::kWarn, "signal_failed", std::string(status.message()), {}});
}

// --- the loop -------------------------------------------------------------

int Agent::Run() {
  const std::vector<std::string> addresses = listeners_->addresses();
  const int workers = initial_workers_;
  logger_.Emit(Event{
      Level::kInfo,
      "agent_started",
      absl::StrFormat("corral-agent pid %d%s: %d worker(s) of '%s'%s%s",
                      SelfPid(), SelfPid() == 1 ? " (PID 1)" : "", workers,
                      absl::StrJoin(options_.command, " "),
                      addresses.empty() ? "" : " on ",
                      absl::StrJoin(addresses, ", ")),
      {}}.With("pid", int64_t{SelfPid()})
                   .With("pid1", SelfPid() == 1)
                   .With("workers", int64_t{workers})
                   .With("listen", absl::StrJoin(addresses, ","))
                   .With("command", absl::StrJoin(options_.command, " ")));
  WatchSignals();
  WatchNotify();
  Housekeeping();
  supervisor_->Start();
  SampleAccepts();
  started_ = true;
  AfterEvent();
  if (!supervisor_->done()) io_.run();
  output_.DrainSync();
  logger_.ReportDropped();
  return supervisor_->exit_code();
}

void Agent::AfterEvent() {
  if (supervisor_->done()) {
    io_.stop();
    return;
  }
  if (started_) {
    // Shutdown past its drain delay: every worker has been told to stop and
    // none will start again (Balancer::Release says why).
    if (supervisor_->stopping_for_good()) listeners_->Release();
    listeners_->Update(supervisor_->Workers(), supervisor_->target_workers());
  }
  if (control_) control_->AfterEvent();
  std::optional<TimePoint> next = supervisor_->NextDeadline();
  if (!next) {
    deadline_timer_.cancel();
    return;
  }
  deadline_timer_.expires_at(*next);
  deadline_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;  // re-armed or cancelled
    supervisor_->Tick();
    AfterEvent();
  });
}

void Agent::Housekeeping() {
  logger_.ReportDropped();
  for (const RejectionCoalescer::Report& r : rejections_.Flush(clock_.Now())) {
    LogRejection(r);
  }
  if (!supervisor_->shutting_down()) {
    rescaler_.Poll(*supervisor_);
    SampleUsage();
  }
  AfterEvent();
  housekeeping_timer_.expires_after(std::chrono::seconds(1));
  housekeeping_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) Housekeeping();
  });
}

void Agent::SampleAccepts() {
  if (!accept_watch_ || supervisor_->done()) return;
  if (!supervisor_->shutting_down()) {
    supervisor_->SetNotAccepting(accept_watch_->Observe(
        clock_.Now(), listeners_->SampleQueues(), supervisor_->Workers()));
    AfterEvent();  // readiness and steering follow the verdict
  }
  accept_timer_.expires_after(AcceptWatch::kSamplePeriod);
  accept_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) SampleAccepts();
  });
}

void Agent::WatchSignals() {
  signal_watch_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                           [this](boost::system::error_code ec) {
                             if (ec) return;
                             OnSignals();
                             AfterEvent();
                             if (!supervisor_->done()) WatchSignals();
                           });
}

void Agent::ReapChildren() {
  // Report every reaped orphan before telling the supervisor about any
  // exit: the batch is already reaped, so the first OnExit() may find
  // no child left and finish the shutdown, and "shutdown_finished" must
  // come last.
  const std::vector<Reaped> reaped = ReapAll();
  for (const Reaped& r : reaped) {
    if (supervisor_->IsWorker(r.pid)) continue;
    ++counters_.orphans_reaped;
    Event e{Level::kInfo,
            "orphan_reaped",
            absl::StrFormat("reaped adopted process %d (%s)", r.pid,
                            r.status.Describe()),
            {}};
    e.With("pid", int64_t{r.pid});
    if (r.status.signal) {
      e.With("signal", std::string(SignalName(r.status.signal)));
    } else {
      e.With("code", int64_t{r.status.code});
    }
    logger_.Emit(e);
  }
  for (const Reaped& r : reaped) {
    if (supervisor_->OnExit(r.pid, r.status)) {
      recently_exited_.push_back(r.pid);
      if (recently_exited_.size() > 64) recently_exited_.pop_front();
    }
  }
}

void Agent::OnSignals() {
  for (int sig : signals_.ReadPending()) {
    if (sig == SIGCHLD) {
      ReapChildren();
      continue;
    }
    logger_.Emit(Event{
        Level::kInfo,
        "signal_received",
        absl::StrCat("received ", SignalName(sig)),
        {}}.With("signal", std::string(SignalName(sig))));
    if (sig == SIGTERM || sig == SIGINT) {
      supervisor_->Shutdown(sig);
    } else if (sig == SIGHUP) {
      if (absl::Status s = supervisor_->Reload(); !s.ok()) {
        logger_.Emit(Event{Level::kWarn,
                           "reload_refused",
                           absl::StrCat("SIGHUP ignored: ", s.message()),
                           {}});
      }
    } else {
      supervisor_->ForwardSignal(sig);
    }
  }
}

// --- notify socket --------------------------------------------------------

void Agent::WatchNotify() {
  notify_watch_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                            [this](boost::system::error_code ec) {
                              if (ec) return;
                              OnNotifyReadable();
                              AfterEvent();
                              if (!supervisor_->done()) WatchNotify();
                            });
}

void Agent::OnNotifyReadable() {
  // Bounded per wake-up so a flood cannot starve the rest of the loop.
  for (int i = 0; i < 256; ++i) {
    std::optional<NotifyDatagram> d = notify_->Receive();
    if (!d) return;
    HandleDatagram(*d);
  }
}

void Agent::HandleDatagram(const NotifyDatagram& d) {
  if (!d.has_credentials) {
    // The kernel reports pid 0 for a sender outside our pid namespace.
    return Reject(0, "sender has no pid in the agent's pid namespace");
  }
  if (std::find(recently_exited_.begin(), recently_exited_.end(), d.pid) !=
      recently_exited_.end()) {
    return;  // e.g. STOPPING=1 read after the worker was already reaped
  }
  if (d.oversized) return Reject(d.pid, "message over 4096 bytes");
  std::optional<pid_t> worker = AttributeToWorker(d.pid);
  if (!worker) return Reject(d.pid, "sender is not a worker or its descendant");
  absl::StatusOr<NotifyMessage> msg = ParseNotifyMessage(d.payload);
  if (!msg.ok()) {
    return Reject(d.pid, absl::StrCat("malformed: ", msg.status().message()));
  }
  supervisor_->OnNotify(*worker, *msg);
}

std::optional<pid_t> Agent::AttributeToWorker(pid_t sender) const {
  pid_t pid = sender;
  // The sender itself, or a descendant of a worker (a shell wrapper's child).
  for (int depth = 0; depth < 32 && pid > 1; ++depth) {
    if (supervisor_->IsWorker(pid)) return pid;
    std::optional<ProcStat> st = ReadProcStat(pid);
    if (!st) return std::nullopt;
    pid = st->ppid;
  }
  return std::nullopt;
}

void Agent::Reject(pid_t pid, const std::string& reason) {
  ++counters_.notify_rejected;
  // A flood of bad datagrams must not become a flood of log lines (issue
  // 12: one line each kept the loop at 98 % CPU).
  if (std::optional<RejectionCoalescer::Report> r =
          rejections_.Reject(clock_.Now(), pid, reason)) {
    LogRejection(*r);
  }
}

void Agent::LogRejection(const RejectionCoalescer::Report& r) {
  const std::string from = r.pid == RejectionCoalescer::kOtherSenders
                               ? std::string("other senders")
                               : absl::StrCat("pid ", r.pid);
  const std::string msg =
      r.window == Duration::zero()
          ? absl::StrFormat("notify message from %s dropped: %s", from,
                            r.reason)
          : absl::StrFormat(
                "%d notify datagram(s) rejected from %s in the "
                "last %.1fs: %s",
                r.count, from, ToMillis(r.window) / 1000, r.reason);
  logger_.Emit(Event{Level::kWarn, "notify_rejected", msg, {}}
                   .With("pid", r.pid)
                   .With("reason", r.reason)
                   .With("count", static_cast<int64_t>(r.count))
                   .With("window_ms", ToMillis(r.window)));
}

// --- IPC readiness and usage --------------------------------------------

void Agent::OnIpcLine(pid_t pid, std::string_view line) {
  // process.send('ready') or {"corral":...} (docs/agent-contract.md); Node's
  // own messages and the app's other process.send() traffic are not ours.
  absl::StatusOr<std::optional<NotifyMessage>> msg = ParseIpcMessage(line);
  if (!msg.ok()) {
    return Reject(
        pid, absl::StrCat("malformed IPC message: ", msg.status().message()));
  }
  if (*msg) supervisor_->OnNotify(pid, **msg);
}

void Agent::SampleUsage() {
  std::vector<UsageReading> readings;
  for (const WorkerView& w : supervisor_->Workers()) {
    if (w.pid == 0) continue;
    if (std::optional<ProcessUsage> u = ReadProcessUsage(w.pid)) {
      readings.push_back({w.pid, u->cpu_seconds, u->rss_bytes});
    }
  }
  const std::optional<MemoryBudget>& budget = rescaler_.state().memory;
  memory_.Sample(clock_.Now(), readings,
                 budget ? budget->per_worker_bytes : std::nullopt,
                 *supervisor_);
}

}  // namespace corral::agent
