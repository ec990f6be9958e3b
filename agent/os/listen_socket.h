// The sockets the agent opens once and hands to every worker.
#ifndef CORRAL_AGENT_OS_LISTEN_SOCKET_H_
#define CORRAL_AGENT_OS_LISTEN_SOCKET_H_

#include <sys/types.h>

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace corral::agent {

// "[NAME=]tcp://HOST:PORT" or "[NAME=]unix:PATH".
struct ListenSpec {
  std::string name;  // LISTEN_FDNAMES entry
  bool is_unix = false;
  std::string host;  // tcp: literal address or name; "" = any
  int port = 0;      // tcp: 0 = the kernel picks
  std::string path;  // unix
};

// Parses a --listen value; `default_name` is used when NAME= is absent.
absl::StatusOr<ListenSpec> ParseListenSpec(std::string_view text,
                                           std::string_view default_name);

struct OpenListener {
  int fd = -1;
  std::string address;  // what it is bound to, e.g. "tcp://127.0.0.1:8080"
  // unix: the socket file, removed on close while it is still ours.
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
};

// Creates, binds and listens (close-on-exec; tcp: SO_REUSEADDR; unix: the
// stale-file rule of sockets.h, so a socket another process serves is
// refused instead of taken over).
absl::StatusOr<OpenListener> OpenListenSocket(const ListenSpec& spec);

// Closes the socket and removes its file (unix) if it is still this one.
void CloseListenSocket(const OpenListener& listener);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_LISTEN_SOCKET_H_
