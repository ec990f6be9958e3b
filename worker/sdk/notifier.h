// sd_notify(3) sender: tells the agent (or systemd) about this worker's state
// over the unix datagram socket named by $NOTIFY_SOCKET. The kernel attaches
// our credentials, which the agent checks.
//
// Not thread-safe; use from the worker's loop thread.
#ifndef CORRAL_WORKER_SDK_NOTIFIER_H_
#define CORRAL_WORKER_SDK_NOTIFIER_H_

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace corral::worker {

class Notifier {
 public:
  // A notifier for $NOTIFY_SOCKET ("/path" or "@abstract"). With the variable
  // unset (run alone) every send is a successful no-op. Error: a malformed
  // socket name or a socket that cannot be created.
  static absl::StatusOr<Notifier> FromEnvironment();
  // A notifier for an explicit socket name ("" = disabled).
  static absl::StatusOr<Notifier> ForSocket(absl::string_view name);

  Notifier(Notifier&& other) noexcept;
  Notifier& operator=(Notifier&& other) noexcept;
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;
  ~Notifier();

  bool enabled() const { return fd_ >= 0; }

  // Sends one datagram ("KEY=VALUE\n..."). Never blocks: when the agent's
  // queue is full the message is dropped with Unavailable.
  absl::Status Send(absl::string_view state);
  absl::Status Ready() { return Send("READY=1"); }
  absl::Status Stopping() { return Send("STOPPING=1"); }
  absl::Status Watchdog() { return Send("WATCHDOG=1"); }
  // STATUS=<text>; newlines are replaced so the text stays one field.
  absl::Status Status(absl::string_view text);
  absl::Status ExtendTimeout(absl::Duration d);

 private:
  Notifier(int fd, std::string address);

  int fd_ = -1;
  std::string address_;  // sun_path bytes; a leading '\0' for abstract
};

// How often to send WATCHDOG=1: half of $WATCHDOG_USEC when it is set and
// $WATCHDOG_PID is unset or names `self` (sd_watchdog_enabled(3)); nullopt
// when the watchdog is off. Error: malformed values.
absl::StatusOr<std::optional<absl::Duration>> WatchdogInterval(pid_t self);

// Pure form for tests.
absl::StatusOr<std::optional<absl::Duration>> ParseWatchdogInterval(
    const std::optional<std::string>& usec,
    const std::optional<std::string>& pid, pid_t self);

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_NOTIFIER_H_
