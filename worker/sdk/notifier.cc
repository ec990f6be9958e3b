#include "worker/sdk/notifier.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "worker/sdk/errno_status.h"

namespace corral::worker {
namespace {

std::optional<std::string> Getenv(const char* name) {
  const char* value = getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

}  // namespace

absl::StatusOr<Notifier> Notifier::FromEnvironment() {
  return ForSocket(Getenv("NOTIFY_SOCKET").value_or(""));
}

absl::StatusOr<Notifier> Notifier::ForSocket(absl::string_view name) {
  if (name.empty()) return Notifier(-1, "");
  if (name[0] != '/' && name[0] != '@') {
    return absl::InvalidArgumentError(absl::StrCat(
        "NOTIFY_SOCKET=\"", name, "\" is neither a path nor @abstract"));
  }
  if (name.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("NOTIFY_SOCKET=\"", name, "\" is too long"));
  }
  std::string address(name);
  if (address[0] == '@') address[0] = '\0';
  // Non-blocking: a stuck agent must never stall the worker's loop.
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ErrnoStatus(errno, "NOTIFY_SOCKET: socket");
  return Notifier(fd, std::move(address));
}

Notifier::Notifier(int fd, std::string address)
    : fd_(fd), address_(std::move(address)) {}

Notifier::Notifier(Notifier&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), address_(std::move(other.address_)) {}

Notifier& Notifier::operator=(Notifier&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    address_ = std::move(other.address_);
  }
  return *this;
}

Notifier::~Notifier() {
  if (fd_ >= 0) close(fd_);
}

absl::Status Notifier::Send(absl::string_view state) {
  if (fd_ < 0) return absl::OkStatus();
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, address_.data(), address_.size());
  socklen_t len = offsetof(sockaddr_un, sun_path) + address_.size();
  if (address_[0] != '\0') len += 1;  // a path includes its terminating NUL
  ssize_t n = sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
                     reinterpret_cast<sockaddr*>(&sa), len);
  if (n < 0) return ErrnoStatus(errno, "sd_notify");
  return absl::OkStatus();
}

absl::Status Notifier::Status(absl::string_view text) {
  return Send(absl::StrCat(
      "STATUS=", absl::StrReplaceAll(text, {{"\n", " "}, {"\r", " "}})));
}

absl::Status Notifier::ExtendTimeout(absl::Duration d) {
  return Send(
      absl::StrCat("EXTEND_TIMEOUT_USEC=", absl::ToInt64Microseconds(d)));
}

absl::StatusOr<std::optional<absl::Duration>> ParseWatchdogInterval(
    const std::optional<std::string>& usec,
    const std::optional<std::string>& pid, pid_t self) {
  if (!usec.has_value()) return std::nullopt;
  int64_t value = 0;
  if (!absl::SimpleAtoi(*usec, &value) || value <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("WATCHDOG_USEC=\"", *usec, "\" is not a duration"));
  }
  if (pid.has_value()) {
    int watched = 0;
    if (!absl::SimpleAtoi(*pid, &watched) || watched <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("WATCHDOG_PID=\"", *pid, "\" is not a pid"));
    }
    if (watched != self) return std::nullopt;  // meant for another process
  }
  // Half the timeout, as sd_watchdog_enabled(3) recommends.
  return absl::Microseconds(value) / 2;
}

absl::StatusOr<std::optional<absl::Duration>> WatchdogInterval(pid_t self) {
  return ParseWatchdogInterval(Getenv("WATCHDOG_USEC"), Getenv("WATCHDOG_PID"),
                               self);
}

}  // namespace corral::worker
