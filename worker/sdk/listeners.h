// Listening sockets for a worker: the ones the agent (or systemd) passed with
// the LISTEN_FDS protocol, or one the worker binds itself from $PORT when it
// runs alone.
//
// Contract (sd_listen_fds(3)): inherited sockets start at fd 3; LISTEN_FDS is
// their count; LISTEN_PID must equal our pid, otherwise the variables were
// meant for another process (e.g. a parent shell) and are ignored;
// LISTEN_FDNAMES optionally names them, colon separated.
//
// Not thread-safe (reads and edits the process environment); call at start.
#ifndef CORRAL_WORKER_SDK_LISTENERS_H_
#define CORRAL_WORKER_SDK_LISTENERS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace corral::worker {

// The first inherited fd (SD_LISTEN_FDS_START).
inline constexpr int kListenFdsStart = 3;

// A listening socket the worker owns (it closes it when it stops accepting).
struct Listener {
  int fd = -1;
  std::string name;        // from LISTEN_FDNAMES, or "port" when bound here
  bool inherited = false;  // true: passed by the agent; false: bound here
};

// The LISTEN_* variables as found in the environment (unset = nullopt).
struct ListenEnv {
  std::optional<std::string> listen_pid;
  std::optional<std::string> listen_fds;
  std::optional<std::string> listen_fdnames;

  static ListenEnv FromProcess();
};

// What ParseListenEnv decided.
struct ListenPlan {
  int count = 0;                   // inherited sockets at fd 3..3+count-1
  std::vector<std::string> names;  // one per socket ("" when unnamed)
  std::string ignored_reason;      // non-empty: variables present but ignored
};

// Pure: validates the variables for process `self`. Absent variables or a
// LISTEN_PID of another process give count 0 (with ignored_reason saying
// why). Malformed values for our pid are an InvalidArgument error.
absl::StatusOr<ListenPlan> ParseListenEnv(const ListenEnv& env, pid_t self);

// Takes the inherited sockets of this process: parses the environment,
// checks that each fd is a listening stream socket, marks them close-on-exec
// and unsets LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES so that children of the
// worker do not see them. Returns an empty vector when nothing was passed.
absl::StatusOr<std::vector<Listener>> TakeInheritedListeners(
    std::string* ignored_reason = nullptr);

// Binds and listens on host:port (TCP, SO_REUSEADDR, close-on-exec).
// host "" or "0.0.0.0" = all IPv4 addresses, "::" = all addresses.
absl::StatusOr<Listener> BindTcpListener(const std::string& host, int port,
                                         int backlog = 1024);

// Inherited sockets if any, else a socket bound to $PORT (default
// `default_port`) on `host`. The usual way to get listeners. When LISTEN_*
// variables were present but ignored, `ignored_reason` (if given) says why.
absl::StatusOr<std::vector<Listener>> OpenListeners(
    const std::string& host, int default_port,
    std::string* ignored_reason = nullptr);

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_LISTENERS_H_
