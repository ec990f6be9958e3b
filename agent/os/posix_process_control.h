// The real ProcessControl: workers are forked and exec'd by the rules of
// spawner.h, each with its own output pipes and, for --ready=ipc, Node's
// IPC socketpair; signals go through kill(2) with checked results.
//
// Loop thread only: Spawn must run on the thread that forks every worker
// (PR_SET_PDEATHSIG is tied to it), and the loop thread is the one that
// reaps, so a pid it signals cannot have been reused.
#ifndef CORRAL_AGENT_OS_POSIX_PROCESS_CONTROL_H_
#define CORRAL_AGENT_OS_POSIX_PROCESS_CONTROL_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/supervisor/process_control.h"

namespace corral::agent {

// What every worker runs with.
struct WorkerCommand {
  std::vector<std::string> argv;  // argv[0] is looked up in $PATH
  // "KEY=VALUE" for every worker; CORRAL_WORKER_ID, NODE_APP_INSTANCE and
  // CORRAL_WORKER_GENERATION are added per spawn.
  std::vector<std::string> env;
  // Become fds 3, 4, ... in every worker (the --listen sockets). Not owned.
  std::vector<int> inherit_fds;
  // When set, replaces inherit_fds: the fds a worker of `slot` inherits
  // (per-slot listening sockets); an error fails the spawn.
  std::function<absl::StatusOr<std::vector<int>>(int slot)> slot_fds;
  // --ready=ipc: a socketpair end becomes the next inherited fd and
  // NODE_CHANNEL_FD names it, as Node's child_process.fork() does.
  bool node_ipc = false;
};

// The agent's ends of a new worker's pipes. They pass to the receiver, which
// must close them: non-blocking, close-on-exec.
struct WorkerPipes {
  int stdout_fd = -1;
  int stderr_fd = -1;
  int ipc_fd = -1;  // Node's IPC channel, or -1
};

class PosixProcessControl final : public ProcessControl {
 public:
  // Called after every successful spawn with the worker's pipes.
  using SpawnedFn =
      std::function<void(const SpawnRequest&, pid_t, const WorkerPipes&)>;
  // Called with every failed kill(2) other than ESRCH (a process or group
  // that is gone already is normal).
  using ErrorFn = std::function<void(const absl::Status&)>;

  // Resolves argv[0] (NotFound / PermissionDenied, "cannot run the worker
  // command: ...") and opens /dev/null for the workers' stdin.
  static absl::StatusOr<std::unique_ptr<PosixProcessControl>> Create(
      WorkerCommand command, SpawnedFn on_spawned, ErrorFn on_error);
  PosixProcessControl(const PosixProcessControl&) = delete;
  PosixProcessControl& operator=(const PosixProcessControl&) = delete;
  ~PosixProcessControl() override;

  // ProcessControl.
  absl::StatusOr<pid_t> Spawn(const SpawnRequest& request) override;
  void SignalGroup(pid_t pgid, int sig) override;
  void SignalProcess(pid_t pid, int sig) override;
  int SignalStrays(int sig, const std::vector<pid_t>& worker_groups) override;
  bool HasChildren() override;

  // kill(-pgid, sig), every failure (ESRCH included) returned, not logged:
  // for a caller that answers someone who asked for the signal.
  absl::Status SignalGroupChecked(pid_t pgid, int sig);

 private:
  PosixProcessControl(WorkerCommand command, std::string executable,
                      int dev_null, SpawnedFn on_spawned, ErrorFn on_error);
  // kill(target, sig): true when sent; failures other than ESRCH reported.
  bool Kill(pid_t target, int sig);

  // Constant after construction.
  const WorkerCommand command_;
  const std::string executable_;
  const int dev_null_;
  const SpawnedFn on_spawned_;
  const ErrorFn on_error_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_POSIX_PROCESS_CONTROL_H_
