#include "agent/os/posix_process_control.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/os/errors.h"
#include "agent/os/procfs.h"
#include "agent/os/reaper.h"
#include "agent/os/signals.h"
#include "agent/os/spawner.h"

namespace corral::agent {
namespace {

// The fds of one spawn; whatever is still set on destruction is closed, so
// every early return cleans up.
struct SpawnFds {
  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  int ipc[2] = {-1, -1};
  ~SpawnFds() {
    for (int fd : {out[0], out[1], err[0], err[1], ipc[0], ipc[1]}) {
      if (fd >= 0) close(fd);
    }
  }
  // Hands the agent's ends over: they are no longer closed here.
  WorkerPipes Release() {
    WorkerPipes p{out[0], err[0], ipc[0]};
    out[0] = err[0] = ipc[0] = -1;
    return p;
  }
};

// The agent's read ends must not block the loop; the workers' write ends
// stay blocking, as a program's stdout normally is.
void SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

std::string Target(pid_t target) {
  return target < 0 ? absl::StrCat("process group ", -target)
                    : absl::StrCat("process ", target);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PosixProcessControl>>
PosixProcessControl::Create(WorkerCommand command, SpawnedFn on_spawned,
                            ErrorFn on_error) {
  const char* path_env = getenv("PATH");
  absl::StatusOr<std::string> exe =
      FindExecutable(command.argv.at(0), path_env ? path_env : "");
  if (!exe.ok()) {
    return absl::Status(exe.status().code(),
                        absl::StrCat("cannot run the worker command: ",
                                     exe.status().message()));
  }
  const int dev_null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (dev_null < 0) return ErrnoStatus(errno, "open /dev/null");
  return std::unique_ptr<PosixProcessControl>(
      new PosixProcessControl(std::move(command), *exe, dev_null,
                              std::move(on_spawned), std::move(on_error)));
}

PosixProcessControl::PosixProcessControl(WorkerCommand command,
                                         std::string executable, int dev_null,
                                         SpawnedFn on_spawned, ErrorFn on_error)
    : command_(std::move(command)),
      executable_(std::move(executable)),
      dev_null_(dev_null),
      on_spawned_(std::move(on_spawned)),
      on_error_(std::move(on_error)) {}

PosixProcessControl::~PosixProcessControl() { close(dev_null_); }

absl::StatusOr<pid_t> PosixProcessControl::Spawn(const SpawnRequest& request) {
  SpawnFds fds;
  if (pipe2(fds.out, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  if (pipe2(fds.err, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  SpawnPlan plan;
  plan.path = executable_;
  plan.argv = command_.argv;
  plan.env = command_.env;
  plan.env.push_back(absl::StrCat("CORRAL_WORKER_ID=", request.slot));
  // PM2's name for the same slot number: apps moved from PM2 gate cron
  // and singleton work on it.
  plan.env.push_back(absl::StrCat("NODE_APP_INSTANCE=", request.slot));
  plan.env.push_back(
      absl::StrCat("CORRAL_WORKER_GENERATION=", request.generation));
  plan.stdin_fd = dev_null_;
  plan.stdout_fd = fds.out[1];
  plan.stderr_fd = fds.err[1];
  plan.inherit_fds = command_.inherit_fds;
  if (command_.slot_fds) {
    absl::StatusOr<std::vector<int>> fds = command_.slot_fds(request.slot);
    if (!fds.ok()) return fds.status();
    plan.inherit_fds = *std::move(fds);
  }
  if (command_.node_ipc) {
    // Node's IPC channel: the child's end is the next inherited fd.
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds.ipc) != 0) {
      return ErrnoStatus(errno, "socketpair");
    }
    plan.env.push_back(
        absl::StrCat("NODE_CHANNEL_FD=", 3 + plan.inherit_fds.size()));
    plan.env.push_back("NODE_CHANNEL_SERIALIZATION_MODE=json");
    plan.inherit_fds.push_back(fds.ipc[1]);
  }
  // When the agent is not PID 1 and dies, its workers must not linger.
  plan.parent_death_signal = getpid() == 1 ? 0 : SIGTERM;
  absl::StatusOr<pid_t> pid = corral::agent::Spawn(plan);
  if (!pid.ok()) return pid;
  // The child has its copies: the agent keeps only the read ends, so a
  // pipe reads EOF once every writer (the worker and its children) is gone.
  for (int* fd : {&fds.out[1], &fds.err[1], &fds.ipc[1]}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  WorkerPipes pipes = fds.Release();
  for (int fd : {pipes.stdout_fd, pipes.stderr_fd, pipes.ipc_fd}) {
    if (fd >= 0) SetNonBlocking(fd);
  }
  on_spawned_(request, *pid, pipes);
  return pid;
}

bool PosixProcessControl::Kill(pid_t target, int sig) {
  if (kill(target, sig) == 0) return true;
  const int err = errno;
  // ESRCH: the process (or every process of the group) is gone already,
  // e.g. exited and reaped between a decision and this call. Normal.
  if (err != ESRCH) {
    on_error_(
        ErrnoStatus(err, absl::StrFormat("cannot send %s to %s",
                                         SignalName(sig), Target(target))));
  }
  return false;
}

void PosixProcessControl::SignalGroup(pid_t pgid, int sig) {
  if (pgid > 1) Kill(-pgid, sig);
}

void PosixProcessControl::SignalProcess(pid_t pid, int sig) {
  if (pid > 1) Kill(pid, sig);
}

absl::Status PosixProcessControl::SignalGroupChecked(pid_t pgid, int sig) {
  if (pgid <= 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("refusing to signal process group %d", pgid));
  }
  if (kill(-pgid, sig) == 0) return absl::OkStatus();
  return ErrnoStatus(errno,
                     absl::StrFormat("kill(-%d, %s)", pgid, SignalName(sig)));
}

int PosixProcessControl::SignalStrays(int sig,
                                      const std::vector<pid_t>& worker_groups) {
  // Only trust /proc when it shows our own pid namespace: a host /proc seen
  // from inside a namespace would name processes that are not ours.
  if (!ProcMatchesNamespace()) return 0;
  int count = 0;
  for (const ProcStat& p : Descendants(getpid())) {
    if (p.state == 'Z') continue;
    if (std::find(worker_groups.begin(), worker_groups.end(), p.pgid) !=
        worker_groups.end()) {
      continue;
    }
    if (Kill(p.pid, sig)) ++count;
  }
  return count;
}

bool PosixProcessControl::HasChildren() { return corral::agent::HasChildren(); }

}  // namespace corral::agent
