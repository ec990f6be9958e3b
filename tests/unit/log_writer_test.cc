// The log path: JSON escaping, line formats, and a blocked stdout that
// must never block the caller (bounded queue, drops counted).
#include "agent/os/log_writer.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>

#include "agent/core/logger.h"

namespace corral::agent {
namespace {

TEST(JsonTest, EscapesControlCharactersQuotesAndBackslashes) {
  std::string out;
  AppendJsonString(&out, std::string("a\"b\\c\nd\te\x01\x7f", 11));
  EXPECT_EQ(out, R"("a\"b\\c\nd\te\u0001\u007f")");
}

TEST(JsonTest, KeepsValidUtf8AndReplacesInvalidBytes) {
  std::string out;
  // é (2 bytes), € (3), 😀 (4), then a lone continuation byte, a truncated
  // sequence, an overlong '/', and an encoded surrogate.
  AppendJsonString(&out,
                   "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\x80|\xe2\x82|"
                   "\xc0\xaf|\xed\xa0\x80");
  EXPECT_EQ(out,
            "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\\ufffd|\\ufffd\\ufffd|"
            "\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd\"");
}

TEST(LogWriterTest, ABlockedOutputNeverBlocksTheWriterAndCountsDrops) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  {
    LogWriter writer(p[1], /*max_pending_bytes=*/64 * 1024);
    const std::string line(1000, 'x');
    auto start = std::chrono::steady_clock::now();
    int accepted = 0;
    // Nobody reads the pipe: after ~64 KiB in the pipe and 64 KiB queued,
    // lines are dropped, and Write() still returns at once.
    for (int i = 0; i < 1000; ++i) accepted += writer.Write(line + "\n");
    auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_LT(elapsed, std::chrono::seconds(2));
    EXPECT_LT(accepted, 1000);
    EXPECT_GT(accepted, 0);
    EXPECT_EQ(writer.TakeDropped()[FairLogQueue::kAgentSource],
              static_cast<uint64_t>(1000 - accepted));
    EXPECT_TRUE(writer.TakeDropped().empty());
    // Let the writer finish so the destructor can join it.
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    char buf[65536];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      if (read(p[0], buf, sizeof(buf)) <= 0) usleep(1000);
      writer.Flush(std::chrono::milliseconds(1));
    }
  }
  close(p[0]);
  close(p[1]);
}

TEST(LoggerTest, FormatsWorkerLinesAsJson) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  {
    LogWriter writer(p[1], 1 << 20);
    Logger logger(LogFormat::kJson, &writer);
    logger.WorkerLine({2, 5, 1234, "stderr"}, "oops \"x\"", true);
    writer.Flush(std::chrono::seconds(2));
  }
  char buf[4096];
  ssize_t n = read(p[0], buf, sizeof(buf));
  ASSERT_GT(n, 0);
  std::string line(buf, n);
  EXPECT_THAT(line,
              ::testing::HasSubstr(
                  R"("src":"worker","worker":2,"gen":5,"pid":1234,)"
                  R"("stream":"stderr","msg":"oops \"x\"","cont":true})"));
  close(p[0]);
  close(p[1]);
}

}  // namespace
}  // namespace corral::agent
