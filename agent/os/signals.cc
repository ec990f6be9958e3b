#include "agent/os/signals.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

#include "agent/os/errors.h"

namespace corral::agent {

sigset_t AgentSignalSet() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig = 1; sig < 32; ++sig) {
    switch (sig) {
      case SIGKILL:
      case SIGSTOP:
      case SIGSEGV:
      case SIGBUS:
      case SIGFPE:
      case SIGILL:
      case SIGTRAP:
      case SIGSYS:
      case SIGABRT:
      case SIGPIPE:
        continue;
      default:
        sigaddset(&set, sig);
    }
  }
  return set;
}

absl::StatusOr<SignalFd> SignalFd::Create() {
  sigset_t set = AgentSignalSet();
  // The mask is inherited by threads created later (gRPC's among them), so
  // no thread ever runs a handler for these signals.
  if (int err = pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0) {
    return ErrnoStatus(err, "pthread_sigmask");
  }
  // A signal ignored by whoever started us (a shell starting a background
  // job ignores SIGINT) would be discarded, not queued: restore the
  // default action for every signal we take; being blocked, none fires.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < 32; ++sig) {
    if (sigismember(&set, sig)) sigaction(sig, &dfl, nullptr);
  }
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  if (sigaction(SIGPIPE, &ignore, nullptr) != 0) {
    return ErrnoStatus(errno, "sigaction(SIGPIPE)");
  }
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "signalfd");
  return SignalFd(fd);
}

SignalFd::SignalFd(SignalFd&& other) noexcept : fd_(other.fd_) {
  other.fd_ = -1;
}

SignalFd::~SignalFd() {
  if (fd_ >= 0) close(fd_);
}

std::vector<int> SignalFd::ReadPending() {
  std::vector<int> out;
  signalfd_siginfo info[16];
  for (;;) {
    ssize_t n = read(fd_, info, sizeof(info));
    if (n <= 0) break;  // EAGAIN: nothing more pending
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(info[0]); ++i) {
      out.push_back(static_cast<int>(info[i].ssi_signo));
    }
  }
  return out;
}

}  // namespace corral::agent
