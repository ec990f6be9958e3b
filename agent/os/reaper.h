// Reaping children: every exited child, worker or adopted orphan.
#ifndef CORRAL_AGENT_OS_REAPER_H_
#define CORRAL_AGENT_OS_REAPER_H_

#include <sys/types.h>

#include <vector>

#include "absl/status/status.h"
#include "agent/supervisor/worker.h"

namespace corral::agent {

struct Reaped {
  pid_t pid;
  ExitStatus status;
};

// waitpid(-1, WNOHANG) until nothing more has exited. Signals coalesce, so
// one SIGCHLD may stand for many exits: always call this in full.
std::vector<Reaped> ReapAll();

// True while this process has any child, exited or not. Reaps nothing.
bool HasChildren();

// When not PID 1, become a child subreaper so orphans of the workers are
// re-parented to the agent and reaped here (PR_SET_CHILD_SUBREAPER).
absl::Status BecomeSubreaperUnlessInit();

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_REAPER_H_
