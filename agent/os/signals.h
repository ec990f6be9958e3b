// Signals as events: every catchable asynchronous signal is blocked and read
// from a signalfd on the event loop. Nothing ever runs in a signal handler.
#ifndef CORRAL_AGENT_OS_SIGNALS_H_
#define CORRAL_AGENT_OS_SIGNALS_H_

#include <signal.h>

#include <vector>

#include "absl/status/statusor.h"
#include "common/signals.h"

namespace corral::agent {

// The signals the agent takes: 1..31 minus KILL/STOP (uncatchable), the
// synchronous fault signals (SEGV, BUS, FPE, ILL, TRAP, SYS, ABRT: they must
// keep their default action) and PIPE (ignored: writes see EPIPE instead).
sigset_t AgentSignalSet();

// Owns a signalfd. Blocking the signals is process-wide and must happen
// before any other thread starts, so Create() is called first in main().
class SignalFd {
 public:
  // Blocks AgentSignalSet(), ignores SIGPIPE and opens the signalfd
  // (non-blocking, close-on-exec).
  static absl::StatusOr<SignalFd> Create();
  SignalFd(SignalFd&& other) noexcept;
  SignalFd& operator=(SignalFd&&) = delete;
  SignalFd(const SignalFd&) = delete;
  ~SignalFd();

  int fd() const { return fd_; }
  // Reads every pending signal number; empty when none is pending.
  std::vector<int> ReadPending();

 private:
  explicit SignalFd(int fd) : fd_(fd) {}
  int fd_;
};

// Names for messages ("SIGTERM") and parsing ("TERM", "SIGTERM" or "15";
// -1 when unknown): the table shared with corralctl and the worker SDK.
using common::ParseSignal;
using common::SignalName;

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_SIGNALS_H_
