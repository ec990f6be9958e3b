#include "agent/rpc/control_socket.h"

#include <chrono>

#include "absl/strings/str_format.h"
#include "agent/os/fd.h"
#include "agent/os/self.h"
#include "agent/os/sockets.h"

namespace corral::agent {
namespace {

absl::Status FlagError(const std::string& path, const absl::Status& s) {
  return absl::Status(
      s.code(), absl::StrFormat("--control-socket=%s: %s", path, s.message()));
}

}  // namespace

bool ControlSocket::Allowed(uid_t uid) {
  return uid == 0 || uid == EffectiveUid();
}

absl::StatusOr<std::unique_ptr<ControlSocket>> ControlSocket::Open(
    const std::string& path, boost::asio::io_context* io) {
  UnixListenOptions options;
  options.mode = 0600;
  options.make_parent_dirs = true;
  // Non-blocking: accepts run until EAGAIN on the io thread.
  options.nonblocking = true;
  options.backlog = 128;
  absl::StatusOr<UnixListener> l = OpenUnixListener(path, options);
  if (!l.ok()) return FlagError(path, l.status());
  return std::unique_ptr<ControlSocket>(
      new ControlSocket(path, io, l->fd, l->dev, l->ino));
}

ControlSocket::ControlSocket(std::string path, boost::asio::io_context* io,
                             int fd, dev_t dev, ino_t ino)
    : path_(std::move(path)),
      dev_(dev),
      ino_(ino),
      listener_(*io, fd),
      retry_(*io) {}

ControlSocket::~ControlSocket() { Close(); }

void ControlSocket::Start(Handoff allow, Handoff deny) {
  allow_ = std::move(allow);
  deny_ = std::move(deny);
  Wait();
}

void ControlSocket::Close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  retry_.cancel();
  listener_.close(ignored);
  RemoveSocketFile(path_, dev_, ino_);
}

void ControlSocket::Wait() {
  listener_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                       [this](boost::system::error_code ec) {
                         if (!ec) AcceptAll();
                       });
}

void ControlSocket::AcceptAll() {
  for (;;) {
    const Accepted accepted = AcceptConnection(listener_.native_handle());
    if (accepted.kind == Accepted::Kind::kNone) break;
    if (accepted.kind == Accepted::Kind::kBackOff) {
      // Out of fds or memory: connections wait in the backlog meanwhile.
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([this](boost::system::error_code ec) {
        if (!ec) Wait();
      });
      return;
    }
    std::optional<uid_t> uid = PeerUid(accepted.fd);
    if (!uid) {
      CloseFd(accepted.fd);  // no credentials, no service
      continue;
    }
    (Allowed(*uid) ? allow_ : deny_)(accepted.fd, *uid);
  }
  Wait();
}

}  // namespace corral::agent
