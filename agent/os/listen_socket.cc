#include "agent/os/listen_socket.h"

#include <sys/un.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/os/fd.h"
#include "agent/os/sockets.h"

namespace corral::agent {
namespace {

constexpr int kBacklog = 4096;  // the kernel caps it at net.core.somaxconn

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid --listen value '", text, "': ", why,
                   " (expected [NAME=]tcp://HOST:PORT or [NAME=]unix:PATH)"));
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
    UnixListenOptions options;
    options.backlog = kBacklog;
    absl::StatusOr<UnixListener> l = OpenUnixListener(spec.path, options);
    if (!l.ok()) {
      return absl::Status(l.status().code(),
                          absl::StrCat("listen on unix:", spec.path, ": ",
                                       l.status().message()));
    }
    return OpenListener{l->fd, absl::StrCat("unix:", spec.path), spec.path,
                        l->dev, l->ino};
  }
  TcpListenOptions options;
  options.backlog = kBacklog;
  absl::StatusOr<TcpListener> l = OpenTcpListener(
      spec.host, spec.port, options,
      absl::StrCat("listen on tcp://", spec.host, ":", spec.port));
  if (!l.ok()) return l.status();
  OpenListener out;
  out.fd = l->fd;
  out.address = l->address;
  return out;
}

void CloseListenSocket(const OpenListener& listener) {
  CloseFd(listener.fd);
  if (!listener.path.empty()) {
    RemoveSocketFile(listener.path, listener.dev, listener.ino);
  }
}

}  // namespace corral::agent
