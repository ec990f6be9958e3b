// The supervisor's only door to processes: spawn a worker, signal a process
// group, and ask about other descendants. The real one forks and signals;
// tests use a fake.
#ifndef CORRAL_AGENT_SUPERVISOR_PROCESS_CONTROL_H_
#define CORRAL_AGENT_SUPERVISOR_PROCESS_CONTROL_H_

#include <sys/types.h>

#include <vector>

#include "absl/status/statusor.h"

namespace corral::agent {

struct SpawnRequest {
  int slot = 0;
  int generation = 0;
};

class ProcessControl {
 public:
  virtual ~ProcessControl() = default;

  // Starts a worker process leading its own process group. On exec failure
  // the child has already been reaped and the status says why: NotFound
  // (shell code 127) or PermissionDenied / FailedPrecondition (126).
  virtual absl::StatusOr<pid_t> Spawn(const SpawnRequest& request) = 0;

  // Sends `sig` to the process group led by `pgid`. A group that is gone
  // is not an error.
  virtual void SignalGroup(pid_t pgid, int sig) = 0;

  // Sends `sig` to one process.
  virtual void SignalProcess(pid_t pid, int sig) = 0;

  // Sends `sig` to every descendant of the agent outside the process groups
  // in `worker_groups` (adopted orphans, grandchildren that left the group).
  // Returns how many processes were signalled.
  virtual int SignalStrays(int sig,
                           const std::vector<pid_t>& worker_groups) = 0;

  // True while the agent has any child at all (workers or adopted).
  virtual bool HasChildren() = 0;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_PROCESS_CONTROL_H_
