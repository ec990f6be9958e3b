// Every listening socket the agent opens (the --listen sockets it hands to
// workers, the control socket, the HTTP port) is opened here, with one rule
// for a socket file an earlier run left behind, plus the accept and
// peer-credential calls of the control plane's own listeners.
#ifndef CORRAL_AGENT_OS_SOCKETS_H_
#define CORRAL_AGENT_OS_SOCKETS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace corral::agent {

// The one stale-file rule. Nothing at `path`: fine. A socket nobody accepts
// on (connect is refused): the leftover of a process that was killed, so it
// is removed. A socket someone serves: AlreadyExists (another agent runs).
// Anything else (a file, a directory): FailedPrecondition, left alone.
absl::Status ClearStaleSocketFile(const std::string& path);

struct UnixListenOptions {
  // When set, the file gets this mode after bind() and before listen(), so
  // nobody can connect while it still has the umask's mode.
  std::optional<mode_t> mode;
  // Create missing parent directories (mode 0700).
  bool make_parent_dirs = false;
  bool nonblocking = false;
  int backlog = 4096;  // the kernel caps it at net.core.somaxconn
};

// A bound, listening unix socket (close-on-exec). dev/ino identify its file.
struct UnixListener {
  int fd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
};

// Applies the stale-file rule, then binds and listens. Messages do not name
// a flag: the caller knows which one it serves.
absl::StatusOr<UnixListener> OpenUnixListener(const std::string& path,
                                              const UnixListenOptions& options);

// Removes `path` if it is still the socket file (dev, ino): a newer agent
// may have replaced it since.
void RemoveSocketFile(const std::string& path, dev_t dev, ino_t ino);

struct TcpListenOptions {
  // Only a literal IP address: no name lookup (InvalidArgument otherwise).
  bool numeric_host = false;
  bool nonblocking = false;
  int backlog = 4096;
  // SO_REUSEPORT: only for the agent's own per-slot group (reuseport.h),
  // whose first socket is opened after a plain probe bind, so a second
  // agent still fails to start instead of sharing the port.
  bool reuseport = false;
};

// A bound, listening TCP socket (close-on-exec, SO_REUSEADDR; SO_REUSEPORT
// only when asked).
struct TcpListener {
  int fd = -1;
  std::string address;  // what it is bound to, e.g. "tcp://127.0.0.1:8080"
  int port = 0;         // the bound port (port 0 asks the kernel for one)
  bool v6 = false;
};

// Binds `host` ("" = any) and `port`. A host that does not resolve is
// InvalidArgument; a failed bind or listen is "<what>: <strerror>".
absl::StatusOr<TcpListener> OpenTcpListener(const std::string& host, int port,
                                            const TcpListenOptions& options,
                                            std::string_view what);

// The result of one accept4() on a non-blocking listener.
struct Accepted {
  enum class Kind {
    kConnection,  // fd is a new connection (non-blocking, close-on-exec)
    kNone,        // nothing waiting (EAGAIN)
    kBackOff,     // out of fds or memory: try again a little later
  };
  Kind kind = Kind::kNone;
  int fd = -1;
};
Accepted AcceptConnection(int listen_fd);

// The uid the kernel recorded for the peer of a unix socket at connect()
// (SO_PEERCRED, which the peer cannot forge); nullopt when unknown.
std::optional<uid_t> PeerUid(int fd);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_SOCKETS_H_
