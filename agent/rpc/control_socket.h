// The control socket: a unix stream socket at --control-socket, mode 0600,
// that only root and the agent's own uid may use.
//
// It accepts connections itself, on the control io thread, so it can read
// each peer's credentials (SO_PEERCRED: what the kernel recorded at
// connect(), which the peer cannot forge) before gRPC reads a byte. Allowed
// connections go to `allow`, others to `deny`, as connected fds
// (non-blocking, close-on-exec) whose ownership passes with them. The file
// mode keeps other users out already; the credential check holds even if
// the file's mode or directory is loosened. The kernel calls themselves are
// agent/os/sockets.h's (one stale-file rule for every listener).
#ifndef CORRAL_AGENT_RPC_CONTROL_SOCKET_H_
#define CORRAL_AGENT_RPC_CONTROL_SOCKET_H_

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace corral::agent {

class ControlSocket {
 public:
  using Handoff = std::function<void(int fd, uid_t uid)>;

  // Creates the directory (0700) when missing, replaces a stale socket file
  // that nobody listens on, binds, makes the file 0600, then listens (so no
  // one can connect while the mode is still the umask's). Fails when another
  // process serves `path`, or `path` is something other than a socket.
  // Errors name --control-socket.
  static absl::StatusOr<std::unique_ptr<ControlSocket>> Open(
      const std::string& path, boost::asio::io_context* io);
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;
  // Closes the socket and removes the file if it is still this socket (a
  // newer agent may have replaced it).
  ~ControlSocket();

  // Starts accepting on the io_context's thread.
  void Start(Handoff allow, Handoff deny);
  // Stops accepting. REQUIRES: the io_context no longer runs.
  void Close();

  const std::string& path() const { return path_; }
  // root and the agent's effective uid.
  static bool Allowed(uid_t uid);

 private:
  ControlSocket(std::string path, boost::asio::io_context* io, int fd,
                dev_t dev, ino_t ino);
  void Wait();
  void AcceptAll();

  // Constant after construction.
  const std::string path_;
  const dev_t dev_;
  const ino_t ino_;
  boost::asio::posix::stream_descriptor listener_;
  boost::asio::steady_timer retry_;
  Handoff allow_;
  Handoff deny_;
  bool closed_ = false;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_CONTROL_SOCKET_H_
