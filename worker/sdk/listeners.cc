#include "worker/sdk/listeners.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "worker/sdk/errno_status.h"

namespace corral::worker {
namespace {

std::optional<std::string> Getenv(const char* name) {
  const char* value = getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

// sd_listen_fds caps the count far below INT_MAX; so do we, so a typo cannot
// make us walk thousands of fds.
constexpr int kMaxListenFds = 256;

absl::Status CheckListeningSocket(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return ErrnoStatus(errno, absl::StrCat("LISTEN_FDS: fd ", fd));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("LISTEN_FDS: fd ", fd, " is not a socket"));
  }
  int type = 0;
  int accepting = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    return ErrnoStatus(errno, absl::StrCat("LISTEN_FDS: fd ", fd));
  }
  len = sizeof(accepting);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0) {
    return ErrnoStatus(errno, absl::StrCat("LISTEN_FDS: fd ", fd));
  }
  if (type != SOCK_STREAM || !accepting) {
    return absl::InvalidArgumentError(absl::StrCat(
        "LISTEN_FDS: fd ", fd, " is not a listening stream socket"));
  }
  return absl::OkStatus();
}

}  // namespace

ListenEnv ListenEnv::FromProcess() {
  return ListenEnv{Getenv("LISTEN_PID"), Getenv("LISTEN_FDS"),
                   Getenv("LISTEN_FDNAMES")};
}

absl::StatusOr<ListenPlan> ParseListenEnv(const ListenEnv& env, pid_t self) {
  ListenPlan plan;
  if (!env.listen_fds.has_value() && !env.listen_pid.has_value()) return plan;
  if (!env.listen_pid.has_value()) {
    plan.ignored_reason = "LISTEN_FDS is set without LISTEN_PID";
    return plan;
  }
  int pid = 0;
  if (!absl::SimpleAtoi(*env.listen_pid, &pid) || pid <= 0) {
    plan.ignored_reason =
        absl::StrCat("LISTEN_PID=\"", *env.listen_pid, "\" is not a pid");
    return plan;
  }
  if (pid != self) {
    // Meant for another process (a wrapper that exec'd us from a fork, or a
    // grandparent): taking the fds would steal sockets that are not ours.
    plan.ignored_reason =
        absl::StrCat("LISTEN_PID=", pid, " is not this process (", self, ")");
    return plan;
  }
  if (!env.listen_fds.has_value()) {
    return absl::InvalidArgumentError("LISTEN_PID is set without LISTEN_FDS");
  }
  int count = 0;
  if (!absl::SimpleAtoi(*env.listen_fds, &count) || count < 0 ||
      count > kMaxListenFds) {
    return absl::InvalidArgumentError(absl::StrCat(
        "LISTEN_FDS=\"", *env.listen_fds, "\" is not a count of sockets"));
  }
  plan.count = count;
  plan.names.assign(count, "");
  if (env.listen_fdnames.has_value() && count > 0) {
    std::vector<std::string> names = absl::StrSplit(*env.listen_fdnames, ':');
    if (static_cast<int>(names.size()) != count) {
      return absl::InvalidArgumentError(
          absl::StrCat("LISTEN_FDNAMES=\"", *env.listen_fdnames, "\" names ",
                       names.size(), " sockets but LISTEN_FDS=", count));
    }
    plan.names = std::move(names);
  }
  return plan;
}

absl::StatusOr<std::vector<Listener>> TakeInheritedListeners(
    std::string* ignored_reason) {
  absl::StatusOr<ListenPlan> plan =
      ParseListenEnv(ListenEnv::FromProcess(), getpid());
  // Unset in every case, as sd_listen_fds(1) does: the variables describe
  // this process only, and a child must never act on them.
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  if (!plan.ok()) return plan.status();
  if (ignored_reason != nullptr) *ignored_reason = plan->ignored_reason;
  std::vector<Listener> listeners;
  for (int i = 0; i < plan->count; ++i) {
    int fd = kListenFdsStart + i;
    if (absl::Status s = CheckListeningSocket(fd); !s.ok()) return s;
    // Inherited fds arrive without FD_CLOEXEC; nothing we exec may get them.
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
      return ErrnoStatus(errno, absl::StrCat("LISTEN_FDS: fd ", fd));
    }
    listeners.push_back(Listener{fd, plan->names[i], true});
  }
  return listeners;
}

absl::StatusOr<Listener> BindTcpListener(const std::string& host, int port,
                                         int backlog) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port ", port));
  }
  std::string node = host.empty() ? "0.0.0.0" : host;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* result = nullptr;
  std::string service = std::to_string(port);
  if (int rc = getaddrinfo(node.c_str(), service.c_str(), &hints, &result);
      rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve \"", node, "\": ", gai_strerror(rc)));
  }
  absl::Status last = absl::UnavailableError("no address");
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last = ErrnoStatus(errno, "socket");
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        listen(fd, backlog) != 0) {
      last = ErrnoStatus(errno, absl::StrCat("bind/listen ", node, ":", port));
      close(fd);
      continue;
    }
    freeaddrinfo(result);
    return Listener{fd, "port", false};
  }
  freeaddrinfo(result);
  return last;
}

absl::StatusOr<std::vector<Listener>> OpenListeners(
    const std::string& host, int default_port, std::string* ignored_reason) {
  absl::StatusOr<std::vector<Listener>> inherited =
      TakeInheritedListeners(ignored_reason);
  if (!inherited.ok() || !inherited->empty()) return inherited;
  int port = default_port;
  if (std::optional<std::string> env = Getenv("PORT"); env.has_value()) {
    if (!absl::SimpleAtoi(*env, &port) || port < 0 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("PORT=\"", *env, "\" is not a port number"));
    }
  }
  absl::StatusOr<Listener> bound = BindTcpListener(host, port);
  if (!bound.ok()) return bound.status();
  return std::vector<Listener>{*bound};
}

}  // namespace corral::worker
