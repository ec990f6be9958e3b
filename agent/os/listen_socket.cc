#include "agent/os/listen_socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/os/errors.h"

namespace corral::agent {
namespace {

constexpr int kBacklog = 4096;  // the kernel caps it at net.core.somaxconn

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid --listen value '", text, "': ", why,
                   " (expected [NAME=]tcp://HOST:PORT or [NAME=]unix:PATH)"));
}

std::string Describe(const sockaddr* sa) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    port = ntohs(in->sin_port);
    return absl::StrCat("tcp://", host, ":", port);
  }
  auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
  inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
  port = ntohs(in6->sin6_port);
  return absl::StrCat("tcp://[", host, "]:", port);
}

}  // namespace

absl::StatusOr<ListenSpec> ParseListenSpec(std::string_view text_std,
                                           std::string_view default_name) {
  const absl::string_view text(text_std.data(), text_std.size());
  ListenSpec spec;
  absl::string_view rest = text;
  size_t eq = rest.find('=');
  size_t scheme = rest.find(':');
  if (eq != absl::string_view::npos && eq < scheme) {
    spec.name = std::string(rest.substr(0, eq));
    rest.remove_prefix(eq + 1);
    if (spec.name.empty() || spec.name.find(':') != std::string::npos) {
      return Bad(text, "NAME must be non-empty and contain no ':'");
    }
  } else {
    spec.name = std::string(default_name);
  }
  if (absl::ConsumePrefix(&rest, "unix:")) {
    spec.is_unix = true;
    spec.path = std::string(rest);
    if (spec.path.empty()) return Bad(text, "empty socket path");
    if (spec.path.size() >= sizeof(sockaddr_un::sun_path)) {
      return Bad(text, "socket path too long");
    }
    return spec;
  }
  if (!absl::ConsumePrefix(&rest, "tcp://")) return Bad(text, "unknown scheme");
  size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos) return Bad(text, "missing :PORT");
  absl::string_view host = rest.substr(0, colon);
  if (absl::ConsumePrefix(&host, "[") && !absl::ConsumeSuffix(&host, "]")) {
    return Bad(text, "unbalanced [ in IPv6 address");
  }
  spec.host = std::string(host);
  if (!absl::SimpleAtoi(rest.substr(colon + 1), &spec.port) || spec.port < 0 ||
      spec.port > 65535) {
    return Bad(text, "PORT must be a number from 0 to 65535");
  }
  return spec;
}

absl::StatusOr<OpenListener> OpenListenSocket(const ListenSpec& spec) {
  if (spec.is_unix) {
    struct stat st;
    if (lstat(spec.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      unlink(spec.path.c_str());  // stale socket from an earlier run
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return ErrnoStatus(errno, "socket(AF_UNIX)");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    spec.path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(fd, kBacklog) != 0) {
      int err = errno;
      close(fd);
      return ErrnoStatus(err, absl::StrCat("listen on unix:", spec.path));
    }
    return OpenListener{fd, absl::StrCat("unix:", spec.path)};
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(spec.port);
  int rc = getaddrinfo(spec.host.empty() ? nullptr : spec.host.c_str(),
                       port.c_str(), &hints, &res);
  if (rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot resolve listen host '", spec.host, "': ", gai_strerror(rc)));
  }
  int err = 0;
  std::string where = absl::StrCat("tcp://", spec.host, ":", spec.port);
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
        listen(fd, kBacklog) == 0) {
      sockaddr_storage bound{};
      socklen_t len = sizeof(bound);
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
      freeaddrinfo(res);
      return OpenListener{fd, Describe(reinterpret_cast<sockaddr*>(&bound))};
    }
    err = errno;
    close(fd);
  }
  freeaddrinfo(res);
  return ErrnoStatus(err, absl::StrCat("listen on ", where));
}

}  // namespace corral::agent
