// The worker SDK's log sink (worker/sdk/log.h) and what Worker reports
// through it: failed sd_notify sends, a drain that outlasts its timeout.
// Real sockets, a real Worker on an ephemeral loopback port.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "boost/asio/post.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/sdk/log.h"
#include "worker/sdk/worker.h"

namespace corral::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Line {
  LogSeverity severity;
  std::string message;
};

// Installs a recording sink for one test and restores the default after.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSink([this](LogSeverity s, absl::string_view m) {
      lines_.push_back({s, std::string(m)});
    });
  }
  void TearDown() override { SetLogSink({}); }
  std::vector<std::string> Messages() const {
    std::vector<std::string> out;
    for (const Line& l : lines_) out.push_back(l.message);
    return out;
  }
  std::vector<Line> lines_;
};

TEST_F(LogTest, ASetSinkGetsTheMessage) {
  Log(LogSeverity::kWarning, "hello");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].severity, LogSeverity::kWarning);
  EXPECT_EQ(lines_[0].message, "hello");
}

TEST(DefaultLogTest, WritesOneLineToStderrUnderTheProgramsOwnName) {
  EXPECT_EQ(DefaultLogLine("x y"),
            std::string(program_invocation_short_name) + ": x y\n");
  // This binary is sessions_test: the SDK must not speak as corral-worker.
  EXPECT_EQ(DefaultLogLine("x"), "sessions_test: x\n");

  char path[] = "/tmp/corral-log-test-XXXXXX";
  int file = mkstemp(path);
  ASSERT_GE(file, 0);
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  ASSERT_EQ(dup2(file, STDERR_FILENO), STDERR_FILENO);
  Log(LogSeverity::kError, "drain did not finish within 1s");
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  char buf[256] = {};
  ssize_t n = pread(file, buf, sizeof(buf) - 1, 0);
  close(file);
  unlink(path);
  EXPECT_EQ(std::string(buf, n > 0 ? n : 0),
            "sessions_test: drain did not finish within 1s\n");
}

// A Worker with NOTIFY_SOCKET at a unix datagram socket this test owns, on
// an ephemeral port; the environment is restored afterwards.
class WorkerLogTest : public LogTest {
 protected:
  void SetUp() override {
    LogTest::SetUp();
    path_ = "/tmp/corral-worker-log-test-" + std::to_string(getpid());
    Bind();
    for (const char* v : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "PORT",
                          "WATCHDOG_USEC", "WATCHDOG_PID"}) {
      unsetenv(v);
    }
    setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  void TearDown() override {
    unsetenv("NOTIFY_SOCKET");
    Unbind();
    LogTest::TearDown();
  }
  std::unique_ptr<Worker> Make(WorkerOptions options = {}) {
    options.bind_host = "127.0.0.1";
    options.default_port = 0;
    absl::StatusOr<std::unique_ptr<Worker>> w = Worker::Create(options);
    EXPECT_TRUE(w.ok()) << w.status();
    return w.ok() ? *std::move(w) : nullptr;
  }
  void Bind() {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0);
    unlink(path_.c_str());
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path_.c_str());
    ASSERT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  }
  // The agent goes away: sends now fail with ENOENT.
  void Unbind() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    unlink(path_.c_str());
  }
  std::string path_;
  int fd_ = -1;
};

TEST_F(WorkerLogTest, AFailedSendIsReportedOnceUntilASendSucceeds) {
  std::unique_ptr<Worker> w = Make();
  ASSERT_NE(w, nullptr);
  w->SetStatus("up");
  EXPECT_TRUE(lines_.empty());  // delivered: nothing to say

  Unbind();
  w->SetStatus("a");
  w->SetStatus("b");  // the same failure again: not repeated
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].severity, LogSeverity::kWarning);
  EXPECT_EQ(
      lines_[0].message,
      std::string("cannot send STATUS=a: sd_notify: ") + strerror(ENOENT));

  Bind();
  w->SetStatus("c");  // gets through: the next failure is news again
  Unbind();
  w->SetStatus("d\ne");
  EXPECT_THAT(Messages(), ElementsAre(HasSubstr("STATUS=a"),
                                      HasSubstr("cannot send STATUS=d e: ")));
}

TEST_F(WorkerLogTest, ReadyAndStoppingFailuresGoToTheSink) {
  std::unique_ptr<Worker> w = Make();
  ASSERT_NE(w, nullptr);
  Unbind();
  // Posted from a posted closure, so it runs after Run() has sent READY=1.
  boost::asio::post(
      w->io(), [&w] { boost::asio::post(w->io(), [&w] { w->Shutdown(); }); });
  EXPECT_EQ(w->Run(), 0);
  // READY=1 failed and is reported; STOPPING=1 and STATUS=draining failed
  // with the same error and are not repeated.
  EXPECT_THAT(Messages(), ElementsAre(HasSubstr("cannot send READY=1: ")));
}

TEST_F(WorkerLogTest, ADrainPastItsTimeoutIsReported) {
  WorkerOptions options;
  options.drain_timeout = absl::Milliseconds(20);
  std::unique_ptr<Worker> w = Make(options);
  ASSERT_NE(w, nullptr);
  w->OnDrain([](std::function<void()>) {});  // never done
  boost::asio::post(w->io(), [&w] { w->Shutdown(); });
  EXPECT_EQ(w->Run(), 1);
  ASSERT_EQ(lines_.size(), 1u) << ::testing::PrintToString(Messages());
  EXPECT_EQ(lines_.back().severity, LogSeverity::kError);
  EXPECT_EQ(lines_.back().message, "drain did not finish within 20ms");
}

}  // namespace
}  // namespace corral::worker
