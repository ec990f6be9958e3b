// fork + exec done by the hard rules: everything is prepared before fork();
// the child only makes async-signal-safe calls; exec failures come back
// through a close-on-exec pipe.
#ifndef CORRAL_AGENT_OS_SPAWNER_H_
#define CORRAL_AGENT_OS_SPAWNER_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace corral::agent {

struct SpawnPlan {
  std::string path;               // absolute path of the executable
  std::vector<std::string> argv;  // argv[0] included
  // "KEY=VALUE" entries. An entry that is exactly "LISTEN_PID=" or
  // "WATCHDOG_PID=" gets the child's own pid appended in the child.
  std::vector<std::string> env;
  int stdin_fd = -1;   // becomes fd 0
  int stdout_fd = -1;  // becomes fd 1
  int stderr_fd = -1;  // becomes fd 2
  // Become fds 3, 4, ... in order; every other fd is closed at exec.
  std::vector<int> inherit_fds;
  // Sent to the child when the agent's forking thread dies (never 0 here:
  // a worker must not outlive an agent that is not PID 1).
  int parent_death_signal = 0;
};

// Starts `plan` as a new process leading its own process group, with an
// empty signal mask and default signal dispositions. Call only from the
// agent's event-loop thread (PR_SET_PDEATHSIG is tied to the forking thread).
// On exec failure the child is reaped here and the status says why:
// NotFound (ENOENT, shell code 127), PermissionDenied (EACCES, 126) or
// FailedPrecondition (any other errno, 126).
absl::StatusOr<pid_t> Spawn(const SpawnPlan& plan);

// Finds `name` the way execvp(3) would (a name with '/' is taken as is),
// before fork, so the child needs no PATH search. NotFound when missing;
// PermissionDenied when found but not executable.
absl::StatusOr<std::string> FindExecutable(const std::string& name,
                                           const std::string& path_env);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_SPAWNER_H_
