#include "worker/sdk/worker.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "boost/asio/post.hpp"
#include "common/duration.h"
#include "common/signals.h"
#include "worker/sdk/log.h"

namespace corral::worker {

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(WorkerOptions options) {
  std::string note;
  absl::StatusOr<std::vector<Listener>> listeners =
      OpenListeners(options.bind_host, options.default_port, &note);
  if (!listeners.ok()) return listeners.status();
  absl::StatusOr<Notifier> notifier = Notifier::FromEnvironment();
  if (!notifier.ok()) return notifier.status();
  absl::StatusOr<std::optional<absl::Duration>> watchdog =
      WatchdogInterval(getpid());
  if (!watchdog.ok()) return watchdog.status();
  return std::unique_ptr<Worker>(
      new Worker(std::move(options), *std::move(listeners), std::move(note),
                 *std::move(notifier), *watchdog));
}

Worker::Worker(WorkerOptions options, std::vector<Listener> listeners,
               std::string listen_note, Notifier notifier,
               std::optional<absl::Duration> watchdog)
    : options_(std::move(options)),
      watchdog_(watchdog),
      listen_note_(std::move(listen_note)),
      signals_(io_, SIGTERM, SIGINT),
      watchdog_timer_(io_),
      drain_timer_(io_),
      notifier_(std::move(notifier)),
      listeners_(std::move(listeners)) {
  const char* id = getenv("CORRAL_WORKER_ID");
  id_ = id != nullptr && *id != '\0' ? id : "standalone";
  // A broken pipe to a client must be an error code, never a process kill.
  signal(SIGPIPE, SIG_IGN);
}

Worker::~Worker() = default;

std::vector<Listener> Worker::TakeListeners() {
  return std::exchange(listeners_, {});
}

void Worker::OnDrain(DrainHook hook) { hooks_.push_back(std::move(hook)); }

void Worker::SetStatus(const std::string& text) {
  if (text == status_) return;
  status_ = text;
  // The text as the Notifier sends it: one line, so is the log message.
  Sent(absl::StrCat("STATUS=",
                    absl::StrReplaceAll(text, {{"\n", " "}, {"\r", " "}})),
       notifier_.Status(text));
}

int Worker::Run() {
  WaitSignal();
  boost::asio::post(io_, [this] { Sent("READY=1", notifier_.Ready()); });
  if (watchdog_.has_value()) Heartbeat();
  io_.run();
  return exit_code_;
}

void Worker::WaitSignal() {
  signals_.async_wait([this](boost::system::error_code ec, int signo) {
    if (ec) return;
    if (draining_) {
      Log(LogSeverity::kWarning, absl::StrCat(common::SignalName(signo),
                                              " during drain, stopping now"));
      return Finish(1);
    }
    Shutdown();
    WaitSignal();
  });
}

void Worker::Heartbeat() {
  Sent("WATCHDOG=1", notifier_.Watchdog());
  watchdog_timer_.expires_after(absl::ToChronoNanoseconds(*watchdog_));
  watchdog_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) Heartbeat();
  });
}

void Worker::Shutdown() {
  if (draining_) return;
  draining_ = true;
  Sent("STOPPING=1", notifier_.Stopping());
  SetStatus("draining");
  drain_timer_.expires_after(absl::ToChronoNanoseconds(options_.drain_timeout));
  drain_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    Log(LogSeverity::kError,
        absl::StrCat("drain did not finish within ",
                     common::DurationToString(options_.drain_timeout)));
    Finish(1);
  });
  hooks_pending_ = hooks_.size() + 1;  // +1 so that no hook finishes early
  for (DrainHook& hook : hooks_) {
    // Shared flag: a hook may copy `done`; only its first call counts.
    hook([this, called = std::make_shared<bool>(false)] {
      if (!std::exchange(*called, true)) HookDone();
    });
  }
  HookDone();
}

void Worker::Sent(absl::string_view what, const absl::Status& status) {
  if (status.ok()) {
    notify_error_.clear();
    return;
  }
  // With the agent gone every heartbeat fails alike: say it once, and again
  // only when the error changes or after a send got through.
  if (status.message() == notify_error_) return;
  notify_error_ = std::string(status.message());
  Log(LogSeverity::kWarning,
      absl::StrCat("cannot send ", what, ": ", status.message()));
}

void Worker::HookDone() {
  if (--hooks_pending_ == 0) Finish(0);
}

void Worker::Finish(int code) {
  if (std::exchange(finished_, true)) return;
  exit_code_ = code;
  // Stopping the loop skips whatever is still queued (open Redis
  // connections, timers): nothing of it matters once drained.
  io_.stop();
}

}  // namespace corral::worker
