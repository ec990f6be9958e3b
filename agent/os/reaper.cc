#include "agent/os/reaper.h"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "agent/os/errors.h"

namespace corral::agent {

std::vector<Reaped> ReapAll() {
  std::vector<Reaped> out;
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) break;  // 0: children left but none exited; -1: ECHILD
    ExitStatus es = WIFSIGNALED(status)
                        ? ExitStatus::Signaled(WTERMSIG(status))
                        : ExitStatus::Exited(WEXITSTATUS(status));
    out.push_back({pid, es});
  }
  return out;
}

bool HasChildren() {
  siginfo_t info{};
  // WNOWAIT leaves any zombie in place; ECHILD means no child at all.
  return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

absl::Status BecomeSubreaperUnlessInit() {
  if (getpid() == 1) return absl::OkStatus();
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    return ErrnoStatus(errno, "prctl(PR_SET_CHILD_SUBREAPER)");
  }
  return absl::OkStatus();
}

}  // namespace corral::agent
