// The worker runtime: one event loop, the listening sockets, the sd_notify
// conversation with the agent, the watchdog heartbeat, and SIGTERM turned
// into a drain. A service builds its parts (HTTP server, session store) on
// io(), registers what must finish before exit with OnDrain(), and calls
// Run().
//
//   auto worker = corral::worker::Worker::Create({});
//   HttpServer server(worker->io(), handler);
//   server.Start(worker->TakeListeners());
//   worker->OnDrain([&](auto done) { server.Drain(done); });
//   return worker->Run();
//
// Run() sends READY=1 once the loop runs, WATCHDOG=1 every WATCHDOG_USEC/2,
// and on SIGTERM or SIGINT: STOPPING=1, then every drain hook; when all have
// called `done` it returns 0. If the drain outlasts drain_timeout it returns 1
// (the agent would SIGKILL us later anyway). A second signal ends the drain
// at once. A failed sd_notify send is reported through the SDK's log sink
// (log.h), once until the error changes or a send succeeds.
//
// Signals are taken on the loop (boost::asio::signal_set); no code runs in a
// signal handler. Single-threaded: call everything from the loop thread.
#ifndef CORRAL_WORKER_SDK_WORKER_H_
#define CORRAL_WORKER_SDK_WORKER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/signal_set.hpp"
#include "boost/asio/steady_timer.hpp"
#include "worker/sdk/listeners.h"
#include "worker/sdk/log.h"
#include "worker/sdk/notifier.h"

namespace corral::worker {

struct WorkerOptions {
  // Where to bind $PORT when no socket was inherited ("::" = all).
  std::string bind_host = "0.0.0.0";
  // The port when $PORT is unset, too.
  int default_port = 8080;
  // Longest drain; keep it below the agent's --stop-timeout (20 s default).
  absl::Duration drain_timeout = absl::Seconds(15);
};

class Worker {
 public:
  using DrainHook = std::function<void(std::function<void()> done)>;

  // Opens the listeners (inherited, or $PORT) and the notify socket.
  // Errors name the variable at fault (LISTEN_FDS=..., NOTIFY_SOCKET=...).
  static absl::StatusOr<std::unique_ptr<Worker>> Create(WorkerOptions options);

  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  boost::asio::io_context& io() { return io_; }
  Notifier& notifier() { return notifier_; }

  // The listening sockets, handed over once (later calls return none).
  std::vector<Listener> TakeListeners();
  // Why inherited LISTEN_* variables were ignored ("" when they were not).
  const std::string& listen_note() const { return listen_note_; }

  // $CORRAL_WORKER_ID, or "standalone" outside the agent.
  const std::string& id() const { return id_; }

  // Called, in order of registration, when the drain starts.
  void OnDrain(DrainHook hook);

  // Sends STATUS=<text> (deduplicated: an unchanged text is not resent).
  void SetStatus(const std::string& text);

  // Starts the drain as SIGTERM does.
  void Shutdown();

  bool draining() const { return draining_; }

  // Runs the loop until drained; the process exit code.
  int Run();

 private:
  Worker(WorkerOptions options, std::vector<Listener> listeners,
         std::string listen_note, Notifier notifier,
         std::optional<absl::Duration> watchdog);

  void WaitSignal();
  void Heartbeat();
  void HookDone();
  // Reports a failed sd_notify send of `what` through the log sink.
  void Sent(absl::string_view what, const absl::Status& status);
  void Finish(int code);

  const WorkerOptions options_;
  const std::optional<absl::Duration> watchdog_;
  const std::string listen_note_;
  std::string id_;
  boost::asio::io_context io_{1};
  boost::asio::signal_set signals_;
  boost::asio::steady_timer watchdog_timer_;
  boost::asio::steady_timer drain_timer_;
  Notifier notifier_;
  std::vector<Listener> listeners_;
  std::vector<DrainHook> hooks_;
  std::string status_;
  std::string notify_error_;  // the last send failure reported; "" = none
  size_t hooks_pending_ = 0;
  bool draining_ = false;
  bool finished_ = false;
  int exit_code_ = 0;
};

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_WORKER_H_
