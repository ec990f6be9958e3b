// The agent's end of the sd_notify protocol: an abstract unix datagram
// socket with SO_PASSCRED, so every message carries the sender's pid.
#ifndef CORRAL_AGENT_OS_NOTIFY_SOCKET_H_
#define CORRAL_AGENT_OS_NOTIFY_SOCKET_H_

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace corral::agent {

struct NotifyDatagram {
  bool has_credentials = false;
  pid_t pid = 0;
  uid_t uid = 0;
  bool oversized = false;  // longer than the limit; payload is cut
  std::string payload;
};

class NotifySocket {
 public:
  // Binds a fresh abstract address (no file to clean up, and it works on a
  // read-only root filesystem). Non-blocking, close-on-exec.
  static absl::StatusOr<NotifySocket> Create(size_t max_message);
  NotifySocket(NotifySocket&& other) noexcept;
  NotifySocket& operator=(NotifySocket&&) = delete;
  NotifySocket(const NotifySocket&) = delete;
  ~NotifySocket();

  int fd() const { return fd_; }
  // The value for NOTIFY_SOCKET ("@corral-notify-...").
  const std::string& address() const { return address_; }
  // The next pending datagram, or nullopt when none is pending. Any fds
  // passed along are closed.
  std::optional<NotifyDatagram> Receive();

 private:
  NotifySocket(int fd, std::string address, size_t max_message)
      : fd_(fd), address_(std::move(address)), max_message_(max_message) {}
  int fd_;
  std::string address_;
  size_t max_message_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_NOTIFY_SOCKET_H_
