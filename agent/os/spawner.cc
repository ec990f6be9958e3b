#include "agent/os/spawner.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/os/errors.h"

namespace corral::agent {
namespace {

// Room for the decimal digits of any pid.
constexpr size_t kPidDigits = 12;

// Everything the child needs, built in the parent: raw pointers only, so
// the child allocates nothing.
struct ChildPlan {
  const char* path;
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::vector<std::string> env_storage;  // envp points into these
  std::vector<char*> pid_slots;          // where the child writes its pid
  int sources[3];
  std::vector<int> inherit;
  int death_signal;
  pid_t parent;
};

// --- child side: async-signal-safe only ---------------------------------

void WritePid(char* out, pid_t pid) {
  char digits[kPidDigits];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + pid % 10);
    pid /= 10;
  } while (pid > 0 && n < static_cast<int>(kPidDigits) - 1);
  for (int i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
  out[n] = '\0';
}

[[noreturn]] void ChildFail(int report_fd, int err) {
  ssize_t ignored = write(report_fd, &err, sizeof(err));
  (void)ignored;
  _exit(err == ENOENT ? 127 : 126);
}

[[noreturn]] void RunChild(const ChildPlan& plan, int report_fd) {
  // Default dispositions: handlers do not survive exec anyway, but ignored
  // signals (SIGPIPE here) would.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  // Own process group, so stop signals reach a shell wrapper's children.
  if (setpgid(0, 0) != 0) ChildFail(report_fd, errno);

  // Move every fd we keep above the target range first, so dup2() below can
  // never overwrite a source that has not been placed yet.
  const int n = static_cast<int>(plan.inherit.size());
  const int floor = 3 + n;
  int moved_report = fcntl(report_fd, F_DUPFD_CLOEXEC, floor);
  if (moved_report < 0) ChildFail(report_fd, errno);
  report_fd = moved_report;
  int src[3];
  for (int i = 0; i < 3; ++i) {
    src[i] = fcntl(plan.sources[i], F_DUPFD_CLOEXEC, floor);
    if (src[i] < 0) ChildFail(report_fd, errno);
  }
  int inherit[64];
  for (int i = 0; i < n && i < 64; ++i) {
    inherit[i] = fcntl(plan.inherit[i], F_DUPFD_CLOEXEC, floor);
    if (inherit[i] < 0) ChildFail(report_fd, errno);
  }
  // dup2() clears close-on-exec on the new fd: exactly these survive exec.
  for (int i = 0; i < 3; ++i) {
    if (dup2(src[i], i) < 0) ChildFail(report_fd, errno);
  }
  for (int i = 0; i < n; ++i) {
    if (dup2(inherit[i], 3 + i) < 0) ChildFail(report_fd, errno);
  }
  // Belt and braces: mark every other fd close-on-exec, in case a library
  // opened one without O_CLOEXEC (Linux 5.11+; older kernels: skip).
  syscall(SYS_close_range, floor, ~0U, CLOSE_RANGE_CLOEXEC);

  const pid_t self = getpid();
  for (char* slot : plan.pid_slots) WritePid(slot, self);

  if (plan.death_signal != 0) {
    prctl(PR_SET_PDEATHSIG, plan.death_signal);
    // The agent may have died between fork() and prctl().
    if (getppid() != plan.parent) _exit(1);
  }
  sigset_t empty;
  sigemptyset(&empty);
  sigprocmask(SIG_SETMASK, &empty, nullptr);
  execve(plan.path, plan.argv.data(), plan.envp.data());
  ChildFail(report_fd, errno);
}

// --- parent side ----------------------------------------------------------

ChildPlan Prepare(const SpawnPlan& plan) {
  ChildPlan c;
  c.path = plan.path.c_str();
  for (const std::string& a : plan.argv)
    c.argv.push_back(const_cast<char*>(a.c_str()));
  c.argv.push_back(nullptr);
  c.env_storage.reserve(plan.env.size());
  for (const std::string& e : plan.env) {
    if (e == "LISTEN_PID=" || e == "WATCHDOG_PID=") {
      c.env_storage.push_back(e + std::string(kPidDigits, '\0'));
    } else {
      c.env_storage.push_back(e);
    }
  }
  for (std::string& e : c.env_storage) {
    c.envp.push_back(e.data());
    if (e.starts_with("LISTEN_PID=") || e.starts_with("WATCHDOG_PID=")) {
      if (e.size() > kPidDigits && e[e.size() - 1] == '\0') {
        c.pid_slots.push_back(e.data() + e.find('=') + 1);
      }
    }
  }
  c.envp.push_back(nullptr);
  c.sources[0] = plan.stdin_fd;
  c.sources[1] = plan.stdout_fd;
  c.sources[2] = plan.stderr_fd;
  c.inherit = plan.inherit_fds;
  c.death_signal = plan.parent_death_signal;
  c.parent = getpid();
  return c;
}

absl::Status ExecFailure(const SpawnPlan& plan, int err) {
  const std::string what = absl::StrCat("cannot run '", plan.path, "'");
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(
          absl::StrCat(what, ": no such file or directory (exit 127)"));
    case EACCES:
      return absl::PermissionDeniedError(
          absl::StrCat(what, ": permission denied (exit 126)"));
    default:
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": ", strerrordesc_np(err), " (exit 126)"));
  }
}

}  // namespace

absl::StatusOr<pid_t> Spawn(const SpawnPlan& plan) {
  if (plan.inherit_fds.size() > 64) {
    return absl::InvalidArgumentError("at most 64 inherited fds");
  }
  ChildPlan child = Prepare(plan);
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  // vfork: the child borrows our memory until execve, so no page tables are
  // copied (fork() of a process with gRPC's threads and arenas costs
  // milliseconds). This is what posix_spawn does. It is safe here because
  // the child only reads `child`, writes its own pid into `child`'s env
  // buffers (made for this spawn alone), and calls async-signal-safe
  // functions; signal dispositions are per process (no CLONE_SIGHAND), so
  // resetting them in the child leaves ours alone, and every signal the
  // agent takes stays blocked until the child's mask is cleared right
  // before execve.
  pid_t pid = vfork();
  if (pid < 0) {
    int err = errno;
    close(report[0]);
    close(report[1]);
    return ErrnoStatus(err, "vfork");
  }
  if (pid == 0) {
    // The child has its own fd table; the read end closes at exec.
    RunChild(child, report[1]);
  }
  close(report[1]);
  // EOF means exec succeeded (the pipe closed on exec); 4 bytes are an errno.
  int err = 0;
  ssize_t n;
  do {
    n = read(report[0], &err, sizeof(err));
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == 0) return pid;
  // The child exits right after reporting: reap it here, so the caller
  // never sees an exit for a process it was not told about.
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return ExecFailure(plan, n == sizeof(err) ? err : EIO);
}

absl::StatusOr<std::string> FindExecutable(const std::string& name,
                                           const std::string& path_env) {
  if (name.empty()) return absl::InvalidArgumentError("empty command");
  auto check = [](const std::string& path) -> absl::Status {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, path);
    if (S_ISDIR(st.st_mode)) {
      return absl::PermissionDeniedError(
          absl::StrCat("'", path, "' is a directory"));
    }
    if (access(path.c_str(), X_OK) != 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("'", path, "' is not executable"));
    }
    return absl::OkStatus();
  };
  if (name.find('/') != std::string::npos) {
    absl::Status s = check(name);
    if (absl::IsNotFound(s)) {
      return absl::NotFoundError(
          absl::StrCat("command '", name, "' not found"));
    }
    if (!s.ok()) return s;
    return name;
  }
  absl::Status denied = absl::OkStatus();
  for (absl::string_view dir : absl::StrSplit(
           path_env.empty() ? "/usr/local/bin:/usr/bin:/bin" : path_env, ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    absl::Status s = check(candidate);
    if (s.ok()) return candidate;
    if (absl::IsPermissionDenied(s) && denied.ok()) denied = s;
  }
  if (!denied.ok()) return denied;
  return absl::NotFoundError(
      absl::StrCat("command '", name, "' not found in PATH"));
}

}  // namespace corral::agent
