#include "agent/os/notify_socket.h"

#include <stddef.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_format.h"
#include "agent/os/errors.h"

namespace corral::agent {

absl::StatusOr<NotifySocket> NotifySocket::Create(size_t max_message) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket(AF_UNIX, SOCK_DGRAM)");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, "setsockopt(SO_PASSCRED)");
  }
  uint64_t nonce = 0;
  if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce)) nonce = 0;
  std::string name = absl::StrFormat("corral-notify-%d-%016x", getpid(), nonce);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  addr.sun_path[0] = '\0';  // abstract namespace
  name.copy(addr.sun_path + 1, sizeof(addr.sun_path) - 2);
  socklen_t len = offsetof(sockaddr_un, sun_path) + 1 + name.size();
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, "bind(notify socket)");
  }
  return NotifySocket(fd, "@" + name, max_message);
}

NotifySocket::NotifySocket(NotifySocket&& other) noexcept
    : fd_(other.fd_),
      address_(std::move(other.address_)),
      max_message_(other.max_message_) {
  other.fd_ = -1;
}

NotifySocket::~NotifySocket() {
  if (fd_ >= 0) close(fd_);
}

std::optional<NotifyDatagram> NotifySocket::Receive() {
  std::vector<char> buf(max_message_ + 1);
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char
      control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 16)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(fd_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return std::nullopt;  // EAGAIN: nothing pending

  NotifyDatagram d;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
       c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_CREDENTIALS &&
        c->cmsg_len == CMSG_LEN(sizeof(ucred))) {
      ucred cred;
      memcpy(&cred, CMSG_DATA(c), sizeof(cred));
      d.has_credentials = cred.pid > 0;
      d.pid = cred.pid;
      d.uid = cred.uid;
    } else if (c->cmsg_type == SCM_RIGHTS) {
      // We keep no fds from workers (no fd store): close what came along.
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int passed;
        memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        close(passed);
      }
    }
  }
  size_t size = static_cast<size_t>(n);
  d.oversized = size > max_message_ || (msg.msg_flags & MSG_TRUNC) != 0;
  d.payload.assign(buf.data(), std::min(size, max_message_));
  return d;
}

}  // namespace corral::agent
