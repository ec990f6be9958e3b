// The os layer against the real kernel: what a spawned worker inherits
// (signal mask, dispositions, fds, environment, process group) and how exec
// failures come back.
#include "agent/os/spawner.h"

#include <dirent.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "agent/os/procfs.h"
#include "agent/os/reaper.h"

namespace corral::agent {
namespace {

std::string StatusField(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      std::string v = line.substr(key.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

std::set<int> OpenFds(pid_t pid) {
  std::set<int> fds;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
  while (dirent* e = readdir(d.get())) {
    if (e->d_name[0] != '.') fds.insert(atoi(e->d_name));
  }
  return fds;
}

std::string Environ(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  for (char& c : s) {
    if (c == '\0') c = '\n';
  }
  return s;
}

// Spawns `sleep 30`, runs the check, then kills and reaps it by pid.
class SpawnedSleep {
 public:
  explicit SpawnedSleep(SpawnPlan plan) : status_(Spawn(plan)) {}
  ~SpawnedSleep() {
    if (status_.ok()) {
      kill(*status_, SIGKILL);
      waitpid(*status_, nullptr, 0);
    }
  }
  const absl::StatusOr<pid_t>& pid() const { return status_; }

 private:
  absl::StatusOr<pid_t> status_;
};

SpawnPlan SleepPlan() {
  SpawnPlan plan;
  plan.path = "/bin/sleep";
  plan.argv = {"sleep", "30"};
  plan.env = {"PATH=/usr/bin:/bin",
              "LISTEN_PID=", "WATCHDOG_PID=", "LISTEN_FDS=2"};
  plan.stdin_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  plan.stdout_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  plan.stderr_fd = plan.stdout_fd;
  return plan;
}

// Waits until `pid` has exec'd (its /proc/PID/exe is the new image).
void WaitForExec(pid_t pid, const std::string& exe) {
  for (int i = 0; i < 2000; ++i) {
    char buf[256];
    std::string link = "/proc/" + std::to_string(pid) + "/exe";
    ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
    if (n > 0 && std::string(buf, n) == exe) return;
    usleep(1000);
  }
  FAIL() << "pid " << pid << " never exec'd " << exe;
}

TEST(SpawnerTest, ChildGetsEmptyMaskDefaultDispositionsOwnGroupAndPid) {
  // Like the agent: every signal blocked, SIGPIPE and SIGUSR1 ignored.
  sigset_t all, saved;
  sigfillset(&all);
  ASSERT_EQ(sigprocmask(SIG_BLOCK, &all, &saved), 0);
  struct sigaction ign {
  }, old_pipe{}, old_usr1{};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, &old_pipe);
  sigaction(SIGUSR1, &ign, &old_usr1);

  SpawnPlan plan = SleepPlan();
  SpawnedSleep child(plan);

  sigprocmask(SIG_SETMASK, &saved, nullptr);
  sigaction(SIGPIPE, &old_pipe, nullptr);
  sigaction(SIGUSR1, &old_usr1, nullptr);

  ASSERT_TRUE(child.pid().ok()) << child.pid().status();
  const pid_t pid = *child.pid();
  WaitForExec(pid, "/usr/bin/sleep");
  EXPECT_EQ(StatusField(pid, "SigBlk"), "0000000000000000");
  EXPECT_EQ(StatusField(pid, "SigIgn"), "0000000000000000");
  std::optional<ProcStat> st = ReadProcStat(pid);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->pgid, pid) << "the worker must lead its own process group";
  // /proc/PID/exe changes before exec has set up the new stack, where
  // /proc/PID/environ reads from: until then it reads empty.
  std::string env;
  for (int i = 0; i < 2000 && env.empty(); ++i) {
    env = Environ(pid);
    if (env.empty()) usleep(1000);
  }
  EXPECT_THAT(env,
              ::testing::HasSubstr("LISTEN_PID=" + std::to_string(pid) + "\n"));
  EXPECT_THAT(
      env, ::testing::HasSubstr("WATCHDOG_PID=" + std::to_string(pid) + "\n"));
  EXPECT_THAT(env, ::testing::HasSubstr("LISTEN_FDS=2\n"));
  close(plan.stdin_fd);
  close(plan.stdout_fd);
}

TEST(SpawnerTest, ChildHasOnlyStdioAndInheritedSockets) {
  // A leaked fd (no O_CLOEXEC, as a careless library might open) and two
  // sockets to inherit, deliberately at low numbers that collide with the
  // target range 3..4.
  int leak = open("/dev/null", O_RDONLY);
  ASSERT_GE(leak, 0);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  SpawnPlan plan = SleepPlan();
  plan.inherit_fds = {sv[1], sv[0]};  // swapped on purpose
  SpawnedSleep child(plan);
  ASSERT_TRUE(child.pid().ok()) << child.pid().status();
  WaitForExec(*child.pid(), "/usr/bin/sleep");
  EXPECT_EQ(OpenFds(*child.pid()), (std::set<int>{0, 1, 2, 3, 4}));
  // fd 3 is sv[1] and fd 4 is sv[0]: compare inode identities.
  auto link = [](const std::string& path) {
    char buf[128];
    ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
    return n > 0 ? std::string(buf, n) : std::string();
  };
  const std::string proc = "/proc/" + std::to_string(*child.pid()) + "/fd/";
  EXPECT_EQ(link(proc + "3"), link("/proc/self/fd/" + std::to_string(sv[1])));
  EXPECT_EQ(link(proc + "4"), link("/proc/self/fd/" + std::to_string(sv[0])));
  close(leak);
  close(sv[0]);
  close(sv[1]);
  close(plan.stdin_fd);
  close(plan.stdout_fd);
}

TEST(SpawnerTest, MissingExecutableIsNotFound127) {
  SpawnPlan plan = SleepPlan();
  plan.path = "/nonexistent/corral-test-binary";
  absl::StatusOr<pid_t> pid = Spawn(plan);
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(pid.status().message(), ::testing::HasSubstr("exit 127"));
  EXPECT_FALSE(HasChildren()) << "the failed child must already be reaped";
  close(plan.stdin_fd);
  close(plan.stdout_fd);
}

TEST(SpawnerTest, NonExecutableFileIsPermissionDenied126) {
  char path[] = "/tmp/corral-noexec-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  chmod(path, 0644);
  SpawnPlan plan = SleepPlan();
  plan.path = path;
  absl::StatusOr<pid_t> pid = Spawn(plan);
  unlink(path);
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(pid.status().message(), ::testing::HasSubstr("exit 126"));
  EXPECT_FALSE(HasChildren());
  close(plan.stdin_fd);
  close(plan.stdout_fd);
}

TEST(SpawnerTest, GarbageExecutableIsExecFormatError126) {
  char path[] = "/tmp/corral-garbage-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "\x01\x02\x03\x04garbage", 11), 11);
  close(fd);
  chmod(path, 0755);
  SpawnPlan plan = SleepPlan();
  plan.path = path;
  absl::StatusOr<pid_t> pid = Spawn(plan);
  unlink(path);
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(pid.status().message(), ::testing::HasSubstr("exit 126"));
  close(plan.stdin_fd);
  close(plan.stdout_fd);
}

TEST(FindExecutableTest, SearchesPathLikeExecvp) {
  EXPECT_EQ(*FindExecutable("sleep", "/nonexistent:/usr/bin:/bin"),
            "/usr/bin/sleep");
  EXPECT_EQ(*FindExecutable("/bin/sh", ""), "/bin/sh");
  EXPECT_EQ(FindExecutable("corral-no-such-cmd", "/usr/bin").status().code(),
            absl::StatusCode::kNotFound);
  char path[] = "/tmp/corral-plain-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  chmod(path, 0644);
  EXPECT_EQ(FindExecutable(path, "").status().code(),
            absl::StatusCode::kPermissionDenied);
  unlink(path);
  EXPECT_EQ(FindExecutable("/tmp", "").status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(ReaperTest, ReapsOrphansAsSubreaper) {
  ASSERT_TRUE(BecomeSubreaperUnlessInit().ok());
  // A child that starts 20 grandchildren and exits without waiting: the
  // grandchildren are re-parented to us.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    for (int i = 0; i < 20; ++i) {
      if (fork() == 0) {
        usleep(20000);
        _exit(7);
      }
    }
    _exit(0);
  }
  std::set<pid_t> reaped;
  int orphans_with_7 = 0;
  for (int i = 0; i < 500 && HasChildren(); ++i) {
    for (const Reaped& r : ReapAll()) {
      reaped.insert(r.pid);
      if (r.pid != child && r.status.code == 7) ++orphans_with_7;
    }
    usleep(5000);
  }
  EXPECT_FALSE(HasChildren());
  EXPECT_TRUE(reaped.count(child));
  EXPECT_EQ(orphans_with_7, 20);
}

// A stat line cut right after comm ("1 (a)") is refused, not a thrown
// std::out_of_range (found by tests/fuzz/cgroup_fuzz.cc).
TEST(ParseProcStatTest, RefusesTruncatedLines) {
  EXPECT_FALSE(ParseProcStat("1 (a)").has_value());
  EXPECT_FALSE(ParseProcStat("1 (a) ").has_value());
  EXPECT_FALSE(ParseProcStat("(a) S 1").has_value());
  EXPECT_FALSE(ParseProcStat("").has_value());
  std::optional<ProcStat> st = ParseProcStat(
      "77 (a b) c) R 1 77 77 0 -1 0 0 0 0 0 12 3 0 0 20 0 1 0 1 1 250");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->pid, 77);
  EXPECT_EQ(st->state, 'R');
  EXPECT_EQ(st->utime_ticks, 12u);
  EXPECT_EQ(st->stime_ticks, 3u);
  EXPECT_EQ(st->rss_pages, 250);
}

}  // namespace
}  // namespace corral::agent
