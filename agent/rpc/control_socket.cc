#include "agent/rpc/control_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_format.h"
#include "agent/os/errors.h"

namespace corral::agent {
namespace {

absl::Status FlagError(const std::string& path, const absl::Status& s) {
  return absl::Status(
      s.code(), absl::StrFormat("--control-socket=%s: %s", path, s.message()));
}

// mkdir -p with mode 0700 for what it creates.
absl::Status MakeDirs(const std::string& dir) {
  if (dir.empty() || dir == "/" || dir == ".") return absl::OkStatus();
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrFormat("%s is not a directory", dir));
  }
  const size_t slash = dir.find_last_of('/');
  if (slash != std::string::npos) {
    if (absl::Status s = MakeDirs(dir.substr(0, slash)); !s.ok()) return s;
  }
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno,
                       absl::StrFormat("cannot create directory %s", dir));
  }
  return absl::OkStatus();
}

sockaddr_un Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// An existing file at `path`: a socket nobody answers on is a leftover of an
// agent that was killed, and is removed; anything else is kept.
absl::Status ClearStale(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, "cannot inspect the path");
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        "the path exists and is not a socket; remove it or choose another "
        "path");
  }
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return ErrnoStatus(errno, "socket");
  sockaddr_un addr = Address(path);
  const int rc =
      connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  close(probe);
  if (rc == 0) {
    return absl::AlreadyExistsError(
        "another process (another corral-agent?) is serving this socket; "
        "stop it or choose another path");
  }
  if (err != ECONNREFUSED) return ErrnoStatus(err, "cannot probe the socket");
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "cannot remove the stale socket");
  }
  return absl::OkStatus();
}

}  // namespace

bool ControlSocket::Allowed(uid_t uid) { return uid == 0 || uid == geteuid(); }

absl::StatusOr<std::unique_ptr<ControlSocket>> ControlSocket::Open(
    const std::string& path, boost::asio::io_context* io) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return FlagError(path, absl::InvalidArgumentError(absl::StrFormat(
                               "the path is %d bytes; a unix socket path must "
                               "be shorter than %d",
                               path.size(), sizeof(sockaddr_un::sun_path))));
  }
  const size_t slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    if (absl::Status s = MakeDirs(path.substr(0, slash)); !s.ok()) {
      return FlagError(path, s);
    }
  }
  if (absl::Status s = ClearStale(path); !s.ok()) return FlagError(path, s);
  // Non-blocking: accepts run until EAGAIN on the io thread.
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return FlagError(path, ErrnoStatus(errno, "socket"));
  sockaddr_un addr = Address(path);
  absl::Status status;
  struct stat st {};
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    status = ErrnoStatus(errno, "cannot bind");
  } else if (chmod(path.c_str(), 0600) != 0) {
    // Before listen(): until then a connect() is refused, so nobody gets in
    // while the file still has the umask's mode.
    status = ErrnoStatus(errno, "cannot chmod 0600");
  } else if (stat(path.c_str(), &st) != 0) {
    status = ErrnoStatus(errno, "cannot stat");
  } else if (listen(fd, 128) != 0) {
    status = ErrnoStatus(errno, "cannot listen");
  }
  if (!status.ok()) {
    close(fd);
    unlink(path.c_str());
    return FlagError(path, status);
  }
  return std::unique_ptr<ControlSocket>(
      new ControlSocket(path, io, fd, st.st_dev, st.st_ino));
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
  struct stat st;
  if (stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    unlink(path_.c_str());
  }
}

void ControlSocket::Wait() {
  listener_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                       [this](boost::system::error_code ec) {
                         if (!ec) AcceptAll();
                       });
}

void ControlSocket::AcceptAll() {
  for (;;) {
    int fd = accept4(listener_.native_handle(), nullptr, nullptr,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // Out of fds or memory: back off instead of spinning on a readable
      // listener; connections wait in the backlog meanwhile.
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([this](boost::system::error_code ec) {
        if (!ec) Wait();
      });
      return;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      close(fd);  // no credentials, no service
      continue;
    }
    (Allowed(cred.uid) ? allow_ : deny_)(fd, cred.uid);
  }
  Wait();
}

}  // namespace corral::agent
