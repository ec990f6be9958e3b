// ProcCgroupReader against the real kernel: make v1 cgroups with a CPU quota
// (and a memory limit), run a child process in them, and check what the
// child's own reader and the sizing policy make of them; then change the
// quota and check again, as a live resize does.
//
// Needs a writable cgroup v1 hierarchy (root on a v1 or hybrid host, as the
// build machines are); skips with the reason otherwise. Every cgroup made
// here is removed at the end, on failure too.

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/os/cgroup_reader.h"
#include "agent/supervisor/sizing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace corral::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr auto kDeadline = std::chrono::seconds(10);

std::optional<std::string> Slurp(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) text.append(buf, n);
  close(fd);
  return text;
}

// "" on success, else the reason.
std::string WriteText(const std::string& path, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return absl::StrCat("open ", path, ": ", strerror(errno));
  const ssize_t n = write(fd, text.data(), text.size());
  const int error = errno;
  close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    return absl::StrCat("write ", path, ": ", strerror(error));
  }
  return "";
}

// This process's directory in the v1 hierarchy that holds `controller`, or
// nullopt with the reason in *why.
std::optional<std::string> OwnV1Dir(const std::string& controller,
                                    std::string* why) {
  const std::optional<std::string> cgroup = Slurp("/proc/self/cgroup");
  const std::optional<std::string> mountinfo = Slurp("/proc/self/mountinfo");
  if (!cgroup || !mountinfo) {
    *why = "cannot read /proc/self/cgroup or /proc/self/mountinfo";
    return std::nullopt;
  }
  absl::StatusOr<std::vector<ProcCgroup>> groups = ParseProcCgroup(*cgroup);
  absl::StatusOr<std::vector<MountInfo>> mounts = ParseMountInfo(*mountinfo);
  if (!groups.ok() || !mounts.ok()) {
    *why = "cannot parse /proc/self/cgroup or /proc/self/mountinfo";
    return std::nullopt;
  }
  for (const ProcCgroup& g : *groups) {
    if (g.hierarchy_id == 0) continue;
    if (std::find(g.controllers.begin(), g.controllers.end(), controller) ==
        g.controllers.end()) {
      continue;
    }
    for (const MountInfo& m : *mounts) {
      if (m.fs_type != "cgroup") continue;
      const auto& opts = m.super_options;
      if (std::find(opts.begin(), opts.end(), controller) == opts.end()) {
        continue;
      }
      if (std::optional<std::string> rel = RelativeCgroupPath(m.root, g.path)) {
        return m.mount_point + *rel;
      }
    }
  }
  *why = absl::StrCat("no cgroup v1 ", controller,
                      " hierarchy is mounted (a pure cgroup v2 host?)");
  return std::nullopt;
}

// The child: joins the cgroups named by the parent, and on each 'r' reads
// its own /proc/self with the real reader and answers one line
// "<workers> <memory limit or -1>\t<explanation>\n". Exits on 'q' or EOF.
[[noreturn]] void ChildMain(int commands, int answers,
                            const std::vector<std::string>& procs_files) {
  for (const std::string& procs : procs_files) {
    if (!WriteText(procs, absl::StrCat(getpid())).empty()) _exit(3);
  }
  char command = 0;
  while (read(commands, &command, 1) == 1 && command == 'r') {
    ProcCgroupReader reader("");
    absl::StatusOr<SizingInputs> in = reader.Read();
    std::string line;
    if (!in.ok()) {
      line = absl::StrCat("-1 -1\t", in.status().ToString(), "\n");
    } else {
      const MemoryLimit* mem = TightestMemoryLimit(*in);
      const WorkerCount w = DecideWorkers(*in, {});
      line = absl::StrCat(w.workers, " ", mem ? mem->limit_bytes : -1, "\t",
                          w.explanation, "\n");
    }
    if (write(answers, line.data(), line.size()) < 0) _exit(4);
  }
  _exit(0);
}

struct Answer {
  int workers = -1;
  int64_t memory = -1;
  std::string explanation;
};

class RealCgroupTest : public ::testing::Test {
 protected:
  void TearDown() override {
    StopChild();
    // Innermost first; a cgroup with no tasks left can be removed at once,
    // but allow the kernel a moment after the reap.
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
      const auto deadline = std::chrono::steady_clock::now() + kDeadline;
      while (rmdir(it->c_str()) != 0 && errno == EBUSY &&
             std::chrono::steady_clock::now() < deadline) {
        usleep(10000);
      }
      EXPECT_EQ(access(it->c_str(), F_OK), -1) << "left behind: " << *it;
    }
  }

  // Makes <own cgroup for controller>/<name>; skips the test when there is
  // no writable v1 hierarchy for it.
  std::optional<std::string> MakeCgroup(const std::string& controller,
                                        const std::string& name) {
    std::string why;
    const std::optional<std::string> own = OwnV1Dir(controller, &why);
    if (!own) {
      skip_ = absl::StrCat("skipped: ", why);
      return std::nullopt;
    }
    return MakeDir(*own + "/" + name);
  }

  std::optional<std::string> MakeDir(const std::string& dir) {
    if (mkdir(dir.c_str(), 0755) != 0) {
      skip_ = absl::StrCat("skipped: cgroups are not writable here (mkdir ",
                           dir, ": ", strerror(errno),
                           "); this test needs root on a host with a cgroup "
                           "v1 hierarchy");
      return std::nullopt;
    }
    made_.push_back(dir);
    return dir;
  }

  void StartChild(const std::vector<std::string>& cgroup_dirs) {
    int commands[2], answers[2];
    ASSERT_EQ(pipe2(commands, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(answers, O_CLOEXEC), 0);
    std::vector<std::string> procs;
    for (const std::string& dir : cgroup_dirs)
      procs.push_back(dir + "/cgroup.procs");
    child_ = fork();
    ASSERT_GE(child_, 0) << strerror(errno);
    if (child_ == 0) {
      close(commands[1]);
      close(answers[0]);
      ChildMain(commands[0], answers[1], procs);
    }
    close(commands[0]);
    close(answers[1]);
    commands_ = commands[1];
    answers_ = answers[0];
  }

  // Asks the child to read its cgroups; waits for the answer line.
  Answer Ask() {
    Answer a;
    if (write(commands_, "r", 1) != 1) {
      ADD_FAILURE() << "child gone: " << strerror(errno);
      return a;
    }
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (line.empty() || line.back() != '\n') {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{answers_, POLLIN, 0};
      char c;
      if (left.count() <= 0 || poll(&p, 1, left.count()) <= 0 ||
          read(answers_, &c, 1) != 1) {
        ADD_FAILURE() << "no answer from the child; got \"" << line << "\"";
        return a;
      }
      line.push_back(c);
    }
    line.pop_back();
    const size_t tab = line.find('\t');
    const size_t space = line.find(' ');
    EXPECT_TRUE(tab != std::string::npos && space < tab) << line;
    if (tab == std::string::npos || space > tab) return a;
    EXPECT_TRUE(absl::SimpleAtoi(line.substr(0, space), &a.workers));
    EXPECT_TRUE(
        absl::SimpleAtoi(line.substr(space + 1, tab - space - 1), &a.memory));
    a.explanation = line.substr(tab + 1);
    return a;
  }

  void StopChild() {
    if (commands_ >= 0) close(commands_);
    if (answers_ >= 0) close(answers_);
    commands_ = answers_ = -1;
    if (child_ <= 0) return;
    // Closing the command pipe ends the child; SIGKILL covers a stuck one.
    // Either way it is reaped before its cgroup is removed.
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (waitpid(child_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(child_, SIGKILL);
        waitpid(child_, &status, 0);
        break;
      }
      usleep(1000);
    }
    child_ = -1;
  }

  int Affinity() {
    absl::StatusOr<int> n = SchedAffinityCount();
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? *n : 1;
  }

  std::string Name() const { return absl::StrCat("corral-test-", getpid()); }

  std::string skip_;
  std::vector<std::string> made_;
  pid_t child_ = -1;
  int commands_ = -1;
  int answers_ = -1;
};

TEST_F(RealCgroupTest, QuotaOnOwnCgroupAndLiveChange) {
  const std::optional<std::string> dir = MakeCgroup("cpu", Name());
  if (!dir) GTEST_SKIP() << skip_;
  ASSERT_EQ(WriteText(*dir + "/cpu.cfs_period_us", "100000"), "");
  ASSERT_EQ(WriteText(*dir + "/cpu.cfs_quota_us", "150000"), "");
  ASSERT_NO_FATAL_FAILURE(StartChild({*dir}));

  // 1.5 CPUs, rounded up: 2 workers where the affinity allows 2.
  const int expected = std::min(2, Affinity());
  Answer a = Ask();
  EXPECT_EQ(a.workers, expected) << a.explanation;
  if (expected == 2) {
    EXPECT_THAT(a.explanation, StartsWith("workers=2: cgroup v1 quota 1.50 "
                                          "CPUs at /"));
    EXPECT_THAT(a.explanation, HasSubstr(Name() + ","));
  }
  // The child really is in the cgroup.
  EXPECT_THAT(Slurp(absl::StrCat("/proc/", child_, "/cgroup")).value_or(""),
              HasSubstr(Name()));

  // A live resize to half a CPU.
  ASSERT_EQ(WriteText(*dir + "/cpu.cfs_quota_us", "50000"), "");
  a = Ask();
  EXPECT_EQ(a.workers, 1) << a.explanation;
  EXPECT_THAT(a.explanation,
              StartsWith("workers=1: cgroup v1 quota 0.50 CPUs"));

  // Limit removed.
  ASSERT_EQ(WriteText(*dir + "/cpu.cfs_quota_us", "-1"), "");
  a = Ask();
  EXPECT_EQ(a.workers, Affinity()) << a.explanation;
}

TEST_F(RealCgroupTest, QuotaOnParentCgroup) {
  const std::optional<std::string> parent = MakeCgroup("cpu", Name());
  if (!parent) GTEST_SKIP() << skip_;
  const std::optional<std::string> leaf = MakeDir(*parent + "/leaf");
  if (!leaf) GTEST_SKIP() << skip_;
  ASSERT_EQ(WriteText(*parent + "/cpu.cfs_quota_us", "150000"), "");
  // v1 refuses a child quota above its parent's (EINVAL), so the leaf keeps
  // -1 and the limit that binds is only visible on the parent: the case Go
  // and automaxprocs miss by reading the leaf alone.
  EXPECT_NE(WriteText(*leaf + "/cpu.cfs_quota_us", "300000"), "");
  ASSERT_NO_FATAL_FAILURE(StartChild({*leaf}));

  Answer a = Ask();
  EXPECT_EQ(a.workers, std::min(2, Affinity())) << a.explanation;
  EXPECT_THAT(a.explanation, HasSubstr("/" + Name() + "/leaf max/100000"));
  if (Affinity() >= 2) {
    EXPECT_THAT(a.explanation,
                StartsWith("workers=2: cgroup v1 quota 1.50 CPUs at /"));
    EXPECT_THAT(a.explanation, HasSubstr(Name() + ", affinity"));
  }

  ASSERT_EQ(WriteText(*parent + "/cpu.cfs_quota_us", "50000"), "");
  a = Ask();
  EXPECT_EQ(a.workers, 1) << a.explanation;
}

TEST_F(RealCgroupTest, MemoryLimit) {
  const std::optional<std::string> dir = MakeCgroup("memory", Name());
  if (!dir) GTEST_SKIP() << skip_;
  const int64_t limit = int64_t{256} << 20;
  ASSERT_EQ(WriteText(*dir + "/memory.limit_in_bytes", absl::StrCat(limit)),
            "");
  ASSERT_NO_FATAL_FAILURE(StartChild({*dir}));
  Answer a = Ask();
  EXPECT_EQ(a.memory, limit) << a.explanation;
  EXPECT_THAT(a.explanation, HasSubstr("/" + Name() + " 256Mi"));
}

TEST(RealSystemTest, ReadsThisMachine) {
  ProcCgroupReader reader("");
  absl::StatusOr<SizingInputs> in = reader.Read();
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_GE(in->affinity_cpus, 1);
  const WorkerCount w = DecideWorkers(*in, {});
  EXPECT_GE(w.workers, 1);
  std::cout << w.explanation << "\n"
            << DecideMemoryBudget(*in, w.workers,
                                  {WorkerMemoryBound::Mode::kAuto})
                   .explanation
            << "\n";
}

}  // namespace
}  // namespace corral::agent
