#include "agent/os/sockets.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/os/errors.h"

namespace corral::agent {
namespace {

sockaddr_un UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
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

std::string Describe(const sockaddr* sa, int* port, bool* v6) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    *port = ntohs(in->sin_port);
    *v6 = false;
    return absl::StrCat("tcp://", host, ":", *port);
  }
  auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
  inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
  *port = ntohs(in6->sin6_port);
  *v6 = true;
  return absl::StrCat("tcp://[", host, "]:", *port);
}

// One candidate address: socket, bind, listen. -1 with errno on failure.
int BindAndListen(const addrinfo* ai, const TcpListenOptions& options) {
  const int type = ai->ai_socktype | SOCK_CLOEXEC |
                   (options.nonblocking ? SOCK_NONBLOCK : 0);
  const int fd = socket(ai->ai_family, type, ai->ai_protocol);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (options.reuseport &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    const int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
      listen(fd, options.backlog) == 0) {
    return fd;
  }
  const int err = errno;
  close(fd);
  errno = err;
  return -1;
}

}  // namespace

absl::Status ClearStaleSocketFile(const std::string& path) {
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
  const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return ErrnoStatus(errno, "socket");
  sockaddr_un addr = UnixAddress(path);
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

absl::StatusOr<UnixListener> OpenUnixListener(
    const std::string& path, const UnixListenOptions& options) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the path is %d bytes; a unix socket path must be shorter than %d",
        path.size(), sizeof(sockaddr_un::sun_path)));
  }
  const size_t slash = path.find_last_of('/');
  if (options.make_parent_dirs && slash != std::string::npos && slash > 0) {
    if (absl::Status s = MakeDirs(path.substr(0, slash)); !s.ok()) return s;
  }
  if (absl::Status s = ClearStaleSocketFile(path); !s.ok()) return s;
  const int type =
      SOCK_STREAM | SOCK_CLOEXEC | (options.nonblocking ? SOCK_NONBLOCK : 0);
  const int fd = socket(AF_UNIX, type, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket");
  sockaddr_un addr = UnixAddress(path);
  absl::Status status;
  struct stat st {};
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    status = ErrnoStatus(errno, "cannot bind");
    close(fd);
    return status;
  }
  if (options.mode && chmod(path.c_str(), *options.mode) != 0) {
    // Before listen(): until then a connect() is refused, so nobody gets in
    // while the file still has the umask's mode.
    status =
        ErrnoStatus(errno, absl::StrFormat("cannot chmod %04o", *options.mode));
  } else if (stat(path.c_str(), &st) != 0) {
    status = ErrnoStatus(errno, "cannot stat");
  } else if (listen(fd, options.backlog) != 0) {
    status = ErrnoStatus(errno, "cannot listen");
  }
  if (!status.ok()) {
    close(fd);
    unlink(path.c_str());
    return status;
  }
  return UnixListener{fd, st.st_dev, st.st_ino};
}

void RemoveSocketFile(const std::string& path, dev_t dev, ino_t ino) {
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
    unlink(path.c_str());
  }
}

absl::StatusOr<TcpListener> OpenTcpListener(const std::string& host, int port,
                                            const TcpListenOptions& options,
                                            std::string_view what) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags =
      AI_PASSIVE | AI_NUMERICSERV | (options.numeric_host ? AI_NUMERICHOST : 0);
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(),
                             service.c_str(), &hints, &res);
  if (rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot resolve listen host '", host, "': ", gai_strerror(rc)));
  }
  int err = 0;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    const int fd = BindAndListen(ai, options);
    if (fd < 0) {
      err = errno;
      continue;
    }
    freeaddrinfo(res);
    sockaddr_storage bound{};
    socklen_t len = sizeof(bound);
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    TcpListener out;
    out.fd = fd;
    out.address =
        Describe(reinterpret_cast<sockaddr*>(&bound), &out.port, &out.v6);
    return out;
  }
  freeaddrinfo(res);
  return ErrnoStatus(err, what);
}

Accepted AcceptConnection(int listen_fd) {
  for (;;) {
    const int fd =
        accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return {Accepted::Kind::kConnection, fd};
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
    // EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection waits in the backlog;
    // the caller backs off instead of spinning on a readable listener.
    return {Accepted::Kind::kBackOff, -1};
  }
}

std::optional<uid_t> PeerUid(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return std::nullopt;
  }
  return cred.uid;
}

}  // namespace corral::agent
