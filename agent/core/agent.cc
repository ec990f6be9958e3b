#include "agent/core/agent.h"

#include <signal.h>

#include <algorithm>
#include <array>
#include <boost/asio/post.hpp>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/os/fd.h"
#include "agent/os/procfs.h"
#include "agent/os/reaper.h"
#include "agent/os/self.h"
#include "agent/supervisor/size_parse.h"

namespace corral::agent {
namespace {

// Worker output lines longer than this are split into pieces.
constexpr size_t kMaxLine = 16 * 1024;
// Variables the agent sets for each worker; inherited copies are removed.
constexpr std::string_view kOwnVariables[] = {
    "LISTEN_FDS=",       "LISTEN_PID=",
    "LISTEN_FDNAMES=",   "NOTIFY_SOCKET=",
    "WATCHDOG_USEC=",    "WATCHDOG_PID=",
    "CORRAL_WORKER_ID=", "CORRAL_WORKER_GENERATION=",
    "NODE_CHANNEL_FD=",  "NODE_CHANNEL_SERIALIZATION_MODE="};
// Worker lines kept for `corralctl logs`.
constexpr size_t kLogHistory = 5000;
// RSS samples above --max-worker-memory before the worker is replaced.
constexpr int kMemorySamples = 2;

SupervisorConfig MakeConfig(const Options& o, int workers) {
  SupervisorConfig c;
  c.workers = workers;
  if (o.ready == ReadyMode::kDelay) c.ready_delay = o.ready_delay;
  c.ready_timeout = o.ready_timeout;
  c.stop_timeout = o.stop_timeout;
  c.drain_delay = o.drain_delay;
  c.watchdog = o.watchdog;
  c.backoff = o.backoff;
  return c;
}

}  // namespace

struct Agent::PipeReader {
  PipeReader(boost::asio::io_context& io, int fd, LineSource src, bool is_ipc)
      : stream(io, fd), source(src), ipc(is_ipc) {}
  boost::asio::posix::stream_descriptor stream;
  LineSource source;
  bool ipc;  // Node's IPC channel: JSON lines, not output
  std::array<char, 64 * 1024> chunk;
  std::string pending;  // a line not yet ended
  std::list<std::unique_ptr<PipeReader>>::iterator self;
};

Agent::Agent(Options options, SignalFd signals, LogWriter* writer)
    : options_(std::move(options)),
      writer_(writer),
      signals_(std::move(signals)),
      signal_watch_(io_),
      deadline_timer_(io_),
      housekeeping_timer_(io_),
      logger_(options_.log_format, writer) {
  logger_.AddObserver([this](const Event& e) {
    for (auto& [id, fn] : std::map(event_observers_)) fn(e);
  });
}

Agent::~Agent() {
  // The descriptors below are owned elsewhere: release, don't close.
  signal_watch_.release();
  if (notify_watch_) notify_watch_->release();
  for (const OpenListener& l : listeners_) CloseListenSocket(l);
}

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(Options options,
                                                     SignalFd signals,
                                                     LogWriter* writer) {
  std::unique_ptr<Agent> agent(
      new Agent(std::move(options), std::move(signals), writer));
  if (absl::Status s = agent->Open(); !s.ok()) return s;
  return agent;
}

absl::Status Agent::Open() {
  if (absl::Status s = BecomeSubreaperUnlessInit(); !s.ok()) return s;
  std::vector<std::string> names;
  for (const ListenSpec& spec : options_.listen) {
    absl::StatusOr<OpenListener> l = OpenListenSocket(spec);
    if (!l.ok()) return l.status();
    listeners_.push_back(*l);
    names.push_back(spec.name);
  }
  listen_names_ = absl::StrJoin(names, ":");
  absl::StatusOr<NotifySocket> notify = NotifySocket::Create(kMaxNotifyMessage);
  if (!notify.ok()) return notify.status();
  notify_.emplace(std::move(*notify));
  WorkerCommand command;
  command.argv = options_.command;
  command.env = BaseEnvironment();
  for (const OpenListener& l : listeners_) command.inherit_fds.push_back(l.fd);
  command.node_ipc = options_.ready == ReadyMode::kIpc;
  absl::StatusOr<std::unique_ptr<PosixProcessControl>> processes =
      PosixProcessControl::Create(
          std::move(command),
          [this](const SpawnRequest& r, pid_t pid, const WorkerPipes& p) {
            OnSpawned(r, pid, p);
          },
          [this](const absl::Status& s) { OnSignalFailed(s); });
  if (!processes.ok()) return processes.status();
  processes_ = std::move(*processes);
  const int workers = initial_workers_ = InitialWorkers();

  signal_watch_.assign(signals_.fd());
  notify_watch_.emplace(io_, notify_->fd());
  std::random_device seed;
  auto rng = std::make_shared<std::mt19937_64>(seed());
  supervisor_ = std::make_unique<Supervisor>(
      MakeConfig(options_, workers), &clock_, processes_.get(), &logger_,
      [rng] { return std::uniform_real_distribution<double>(0, 1)(*rng); });
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
  env.push_back(absl::StrCat("NOTIFY_SOCKET=", notify_->address()));
  if (!listeners_.empty()) {
    env.push_back(absl::StrCat("LISTEN_FDS=", listeners_.size()));
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

void Agent::OnSpawned(const SpawnRequest& request, pid_t pid,
                      const WorkerPipes& pipes) {
  StartReader(pipes.stdout_fd,
              {request.slot, request.generation, pid, "stdout"}, false);
  StartReader(pipes.stderr_fd,
              {request.slot, request.generation, pid, "stderr"}, false);
  if (pipes.ipc_fd >= 0) {
    StartReader(pipes.ipc_fd, {request.slot, request.generation, pid, "ipc"},
                true);
  }
}

void Agent::OnSignalFailed(const absl::Status& status) {
  logger_.Emit(
      Event{Level::kWarn, "signal_failed", std::string(status.message()), {}});
}

// --- the loop -------------------------------------------------------------

int Agent::Run() {
  std::vector<std::string> addresses;
  for (const OpenListener& l : listeners_) addresses.push_back(l.address);
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
  AfterEvent();
  if (!supervisor_->done()) io_.run();
  DrainPipesSync();
  logger_.ReportDropped();
  return supervisor_->exit_code();
}

void Agent::AfterEvent() {
  if (supervisor_->done()) {
    io_.stop();
    return;
  }
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
  if (!supervisor_->shutting_down()) {
    ReadSizing(/*apply=*/true);
    SampleUsage();
  }
  AfterEvent();
  housekeeping_timer_.expires_after(std::chrono::seconds(1));
  housekeeping_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) Housekeeping();
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
    ++orphans_reaped_;
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
  ++notify_rejected_;
  logger_.Emit(Event{
      Level::kWarn,
      "notify_rejected",
      absl::StrFormat("notify message from pid %d dropped: %s", pid, reason),
      {}}.With("pid", int64_t{pid})
                   .With("reason", reason));
}

// --- worker output --------------------------------------------------------

void Agent::StartReader(int fd, const LineSource& source, bool ipc) {
  readers_.push_back(std::make_unique<PipeReader>(io_, fd, source, ipc));
  PipeReader* reader = readers_.back().get();
  reader->self = std::prev(readers_.end());
  ReadPipe(reader);
}

void Agent::ReadPipe(PipeReader* r) {
  r->stream.async_read_some(
      boost::asio::buffer(r->chunk),
      [this, r](boost::system::error_code ec, size_t n) {
        if (ec) return FinishReader(r);  // EOF: every writer closed it
        r->pending.append(r->chunk.data(), n);
        size_t start = 0;
        for (;;) {
          size_t nl = r->pending.find('\n', start);
          if (nl == std::string::npos) break;
          std::string_view line(r->pending.data() + start, nl - start);
          start = nl + 1;
          if (r->ipc) {
            OnIpcLine(r->source.pid, line);
            continue;
          }
          while (line.size() > kMaxLine) {
            OnWorkerLine(r->source, line.substr(0, kMaxLine), true);
            line.remove_prefix(kMaxLine);
          }
          OnWorkerLine(r->source, line, false);
        }
        if (r->ipc && r->pending.size() - start > kMaxLine) {
          r->pending.clear();  // not a JSON line we will ever use
          start = 0;
        }
        r->pending.erase(0, start);
        while (r->pending.size() > kMaxLine) {
          OnWorkerLine(r->source,
                       std::string_view(r->pending).substr(0, kMaxLine), true);
          r->pending.erase(0, kMaxLine);
        }
        ReadPipe(r);
      });
}

void Agent::FinishReader(PipeReader* r) {
  if (!r->pending.empty() && !r->ipc) {
    OnWorkerLine(r->source, r->pending, false);
  }
  readers_.erase(r->self);
}

void Agent::DrainPipesSync() {
  // Every process is gone, so what is left in the pipes is all there is.
  for (auto& r : readers_) {
    if (r->ipc) continue;
    ReadAvailable(r->stream.native_handle(), &r->pending);
    size_t start = 0;
    for (size_t nl; (nl = r->pending.find('\n', start)) != std::string::npos;
         start = nl + 1) {
      OnWorkerLine(r->source,
                   std::string_view(r->pending).substr(start, nl - start),
                   false);
    }
    if (start < r->pending.size()) {
      OnWorkerLine(r->source, std::string_view(r->pending).substr(start),
                   false);
    }
  }
  readers_.clear();
}

// --- worker output, IPC readiness ----------------------------------------

void Agent::OnWorkerLine(const LineSource& source, std::string_view text,
                         bool cont) {
  logger_.WorkerLine(source, text, cont);
  LogRecord rec;
  rec.seq = ++log_seq_;
  rec.ts = TimestampNow();
  rec.slot = source.slot;
  rec.generation = source.generation;
  rec.pid = source.pid;
  rec.stream = source.stream;
  rec.text = std::string(text);
  rec.cont = cont;
  for (auto& [id, fn] : std::map(log_observers_)) fn(rec);
  log_history_.push_back(std::move(rec));
  if (log_history_.size() > kLogHistory) log_history_.pop_front();
}

void Agent::OnIpcLine(pid_t pid, std::string_view line) {
  // process.send('ready') arrives as the JSON string "ready". Node's own
  // internal messages ({"cmd":"NODE_..."}) and anything else are ignored.
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
    line.remove_suffix(1);
  }
  if (line != "\"ready\"") return;
  NotifyMessage ready;
  ready.ready = true;
  supervisor_->OnNotify(pid, ready);
}

// --- sizing and usage -----------------------------------------------------

int Agent::InitialWorkers() {
  sizing_.auto_mode = !options_.workers.has_value();
  ReadSizing(/*apply=*/false);
  if (options_.workers) return *options_.workers;
  return sizing_.decision ? sizing_.decision->workers : AffinityCpuCount();
}

void Agent::ReadSizing(bool apply) {
  absl::StatusOr<SizingInputs> inputs = cgroups_.Read();
  if (!inputs.ok()) {
    if (!apply) {
      logger_.Emit(Event{
          Level::kWarn,
          "sizing_failed",
          absl::StrCat("cannot read the CPU limits (",
                       inputs.status().message(), "); using the affinity mask"),
          {}});
    }
    return;
  }
  const bool changed = !sizing_.inputs || !(*sizing_.inputs == *inputs);
  sizing_.inputs = *inputs;
  WorkerCount decision = DecideWorkers(*inputs, options_.sizing);
  const int workers = supervisor_ ? supervisor_->target_workers()
                                  : options_.workers.value_or(decision.workers);
  sizing_.memory = DecideMemoryBudget(*inputs, std::max(workers, 1),
                                      options_.max_worker_memory);
  sizing_.decision = decision;
  if (!apply) {
    logger_.Emit(Event{Level::kInfo, "sizing", decision.explanation, {}}
                     .With("workers", int64_t{decision.workers})
                     .With("auto", sizing_.auto_mode)
                     .With("rule", std::string(SizingRuleName(decision.rule))));
    if (sizing_.memory->per_worker_bytes) {
      logger_.Emit(Event{
          Level::kInfo,
          "memory_budget",
          sizing_.memory->explanation,
          {}}.With("bytes", *sizing_.memory->per_worker_bytes));
    }
    return;
  }
  if (!sizing_.auto_mode || supervisor_->draining()) {
    pending_workers_.reset();
    return;
  }
  if (decision.workers == supervisor_->target_workers()) {
    pending_workers_.reset();
    return;
  }
  // A new count must hold for two reads before it is applied, so a limit
  // written in two steps does not make workers flap.
  if (pending_workers_ != decision.workers) {
    pending_workers_ = decision.workers;
    return;
  }
  pending_workers_.reset();
  (void)changed;
  logger_.Emit(Event{
      Level::kInfo,
      "rescale",
      absl::StrFormat("CPU limit changed: %s", decision.explanation),
      {}}.With("from", int64_t{supervisor_->target_workers()})
                   .With("to", int64_t{decision.workers}));
  if (absl::Status s = supervisor_->Scale(decision.workers); !s.ok()) {
    logger_.Emit(
        Event{Level::kWarn, "rescale_refused", std::string(s.message()), {}});
  }
}

void Agent::SampleUsage() {
  const TimePoint now = clock_.Now();
  std::map<pid_t, UsageSample> next;
  // 0 = no bound.
  const int64_t bound = sizing_.memory && sizing_.memory->per_worker_bytes
                            ? *sizing_.memory->per_worker_bytes
                            : 0;
  for (const WorkerView& w : supervisor_->Workers()) {
    if (w.pid == 0) continue;
    std::optional<ProcessUsage> read = ReadProcessUsage(w.pid);
    if (!read) continue;
    UsageSample sample;
    sample.at = now;
    sample.usage.cpu_seconds = read->cpu_seconds;
    sample.usage.rss_bytes = read->rss_bytes;
    if (auto it = usage_.find(w.pid); it != usage_.end()) {
      const double secs =
          std::chrono::duration<double>(now - it->second.at).count();
      if (secs > 0) {
        sample.usage.cpu_percent =
            100.0 * (sample.usage.cpu_seconds - it->second.usage.cpu_seconds) /
            secs;
      }
      sample.over_memory = it->second.over_memory;
    }
    if (bound > 0 && w.state == WorkerState::kReady &&
        sample.usage.rss_bytes > bound) {
      if (++sample.over_memory >= kMemorySamples) {
        Event e{
            Level::kWarn,
            "memory_replace",
            absl::StrFormat("worker %d (pid %d) RSS %s is over "
                            "--max-worker-memory %s: replacing it",
                            w.slot, w.pid, FormatSize(sample.usage.rss_bytes),
                            FormatSize(bound)),
            {}};
        e.With("worker", int64_t{w.slot})
            .With("pid", int64_t{w.pid})
            .With("rss_bytes", sample.usage.rss_bytes)
            .With("bound_bytes", bound);
        // Logged before the replacement's own events; a refusal (another
        // roll in progress) is retried next second and reported once.
        if (sample.over_memory == kMemorySamples) logger_.Emit(e);
        absl::Status s = supervisor_->Replace(w.slot, "memory");
        if (s.ok()) {
          ++memory_replacements_;
          sample.over_memory = 0;
        } else if (sample.over_memory == kMemorySamples) {
          logger_.Emit(Event{
              Level::kWarn,
              "memory_replace_refused",
              absl::StrFormat("worker %d: %s; will retry", w.slot, s.message()),
              {}}.With("worker", int64_t{w.slot}));
        }
      }
    } else {
      sample.over_memory = 0;
    }
    next[w.pid] = sample;
  }
  usage_ = std::move(next);
}

// --- AgentControl ---------------------------------------------------------

void Agent::Post(std::function<void()> fn) {
  boost::asio::post(io_, [this, fn = std::move(fn)] {
    fn();
    AfterEvent();
  });
}

AgentCounters Agent::counters() const {
  AgentCounters c;
  c.orphans_reaped = orphans_reaped_;
  c.notify_rejected = notify_rejected_;
  c.log_lines_dropped = logger_.dropped_total();
  c.memory_replacements = memory_replacements_;
  return c;
}

std::optional<WorkerUsage> Agent::Usage(pid_t pid) const {
  auto it = usage_.find(pid);
  if (it == usage_.end()) return std::nullopt;
  return it->second.usage;
}

absl::Status Agent::ScaleTo(std::optional<int> workers) {
  if (!workers) {
    if (!sizing_.decision) {
      return absl::FailedPreconditionError(
          "the CPU limit could not be read; scale to a number instead");
    }
    if (absl::Status s = supervisor_->Scale(sizing_.decision->workers);
        !s.ok()) {
      return s;
    }
    sizing_.auto_mode = true;
    pending_workers_.reset();
    return absl::OkStatus();
  }
  const int max = options_.sizing.max_workers;
  if (max > 0 && *workers > max) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cannot scale to %d workers: --max-workers is %d", *workers, max));
  }
  if (*workers > 4096) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cannot scale to %d workers: the limit is 4096", *workers));
  }
  if (absl::Status s = supervisor_->Scale(*workers); !s.ok()) return s;
  sizing_.auto_mode = false;
  return absl::OkStatus();
}

absl::Status Agent::RestartWorker(int slot) {
  return supervisor_->Replace(slot, "restart");
}

absl::Status Agent::SignalWorkerGroup(pid_t pgid, int sig) {
  return processes_->SignalGroupChecked(pgid, sig);
}

std::vector<LogRecord> Agent::TailLogs(std::optional<int> slot,
                                       size_t max_lines) const {
  std::vector<LogRecord> out;
  for (auto it = log_history_.rbegin();
       it != log_history_.rend() && out.size() < max_lines; ++it) {
    if (!slot || it->slot == *slot) out.push_back(*it);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

int Agent::AddEventObserver(std::function<void(const Event&)> fn) {
  event_observers_[next_observer_] = std::move(fn);
  return next_observer_++;
}

int Agent::AddLogObserver(std::function<void(const LogRecord&)> fn) {
  log_observers_[next_observer_] = std::move(fn);
  return next_observer_++;
}

void Agent::RemoveObserver(int id) {
  event_observers_.erase(id);
  log_observers_.erase(id);
}

bool Agent::stopping() const { return supervisor_->shutting_down(); }

}  // namespace corral::agent
