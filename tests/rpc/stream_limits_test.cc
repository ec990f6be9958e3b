// Following streams (WatchEvents, StreamLogs -f) against a real agent whose
// worker floods its output: many clients that never read must not grow the
// agent's memory or take its liveness down; one stream too many is refused
// by name; a slow reader is told how many lines it missed (issue 12, #1).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/rpc/agent_process.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Must match StreamLimits::max_streams (agent/rpc/stream_fanout.h).
constexpr int kMaxStreams = 128;
// How much the agent's RSS may grow while every stream is open and the
// worker floods: a wide margin (sanitizer builds included) over what it
// takes (+17 MB measured: 20 MiB of rings at most, one message and gRPC's
// buffers per stream). Before the fix it grew by hundreds of MB a second.
constexpr long kMaxGrowthKb = 100 * 1024;

// One worker that writes 1000-byte lines at about 5 MB/s while the file
// "flood" exists in the test's directory, and nothing otherwise.
std::vector<std::string> FloodWorker() {
  return {"/usr/bin/python3", "-c",
          "import os, sys, time\n"
          "flag = os.environ['CORRAL_TEST_DIR'] + '/flood'\n"
          "out = sys.stdout.buffer\n"
          "batch = (b'x' * 999 + b'\\n') * 250\n"
          "while True:\n"
          "    if os.path.exists(flag):\n"
          "        out.write(batch); out.flush()\n"
          "    time.sleep(0.05)\n"};
}

long RssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      long kb = 0;
      in >> kb;
      return kb;
    }
  }
  return -1;
}

// The HTTP status of GET `path`, or 0 when no answer came within a second.
int HttpStatus(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int status = 0;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
    char buf[64] = {};
    if (write(fd, req.data(), req.size()) == ssize_t(req.size()) &&
        read(fd, buf, sizeof(buf) - 1) > 12) {
      status = std::atoi(buf + 9);  // "HTTP/1.1 200 OK"
    }
  }
  close(fd);
  return status;
}

std::unique_ptr<grpc::ClientContext> Deadline(std::chrono::milliseconds d) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + d);
  return context;
}

// Streams opened by a test, cancelled when it ends.
struct OpenStreams {
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReaderInterface<corral::v1::Event>>>
      events;
  std::vector<std::unique_ptr<grpc::ClientReaderInterface<corral::v1::LogLine>>>
      logs;
  ~OpenStreams() {
    for (auto& c : contexts) c->TryCancel();
    for (auto& r : events) r->Finish();
    for (auto& r : logs) r->Finish();
  }
};

class StreamLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http_port_ = FreePort();
    agent_ = AgentProcess::Start(
        {"--workers=1", "--ready=delay:50ms", "--stop-timeout=3s",
         "--http-port=" + std::to_string(http_port_)},
        FloodWorker());
    ASSERT_NE(agent_, nullptr);
    ASSERT_TRUE(agent_->WaitReady(1)) << agent_->Log();
  }
  void TearDown() override {
    std::filesystem::remove(agent_->dir() + "/flood");
    if (HasFailure()) {
      const std::string log = agent_->Log();
      // The flood fills the log: the agent's own lines are what matter.
      std::istringstream lines(log);
      std::string line;
      while (std::getline(lines, line)) {
        if (line.find(" agent ") != std::string::npos) {
          std::fprintf(stderr, "%s\n", line.c_str());
        }
      }
    }
  }
  void Flood() { std::ofstream(agent_->dir() + "/flood") << "on\n"; }
  // Bytes the agent has logged so far (the flood goes through its stdout).
  uintmax_t LogBytes() {
    return std::filesystem::file_size(agent_->dir() + "/agent.log");
  }
  // A channel of its own (a connection of its own), as separate clients.
  std::shared_ptr<grpc::Channel> NewChannel() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel("unix:" + agent_->socket(),
                                     grpc::InsecureChannelCredentials(), args);
  }

  int http_port_ = 0;
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(StreamLimitsTest, IdleStreamsDoNotGrowTheAgentOrTakeLivenessDown) {
  OpenStreams open;
  std::vector<std::unique_ptr<corral::v1::Agent::Stub>> stubs;
  for (int i = 0; i < 4; ++i) {
    stubs.push_back(corral::v1::Agent::NewStub(NewChannel()));
  }
  // The most streams, half events and half logs, none of which ever reads.
  for (int i = 0; i < kMaxStreams; ++i) {
    auto& stub = *stubs[i % stubs.size()];
    open.contexts.push_back(std::make_unique<grpc::ClientContext>());
    grpc::ClientContext* c = open.contexts.back().get();
    if (i % 2 == 0) {
      open.events.push_back(stub.WatchEvents(c, {}));
      open.events.back()->WaitForInitialMetadata();
    } else {
      corral::v1::StreamLogsRequest req;
      req.set_follow(true);
      open.logs.push_back(stub.StreamLogs(c, req));
      open.logs.back()->WaitForInitialMetadata();
    }
  }

  const long rss_before = RssKb(agent_->pid());
  const uintmax_t log_before = LogBytes();
  Flood();
  long rss_max = 0;
  const auto end = std::chrono::steady_clock::now() + 8s;
  while (std::chrono::steady_clock::now() < end) {
    const long rss = RssKb(agent_->pid());
    rss_max = std::max(rss_max, rss);
    // Stop at once when over: the old agent grew by hundreds of MB a second.
    ASSERT_LT(rss - rss_before, kMaxGrowthKb)
        << "agent RSS " << rss << " kB, was " << rss_before << " kB";
    ASSERT_EQ(HttpStatus(http_port_, "/livez"), 200);
    grpc::health::v1::HealthCheckRequest live;
    live.set_service("liveness");
    grpc::health::v1::HealthCheckResponse health;
    auto hc = Deadline(1000ms);
    ASSERT_TRUE(agent_->health().Check(hc.get(), live, &health).ok());
    ASSERT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);
    corral::v1::GetStatusResponse status;
    auto sc = Deadline(1000ms);
    grpc::Status s = agent_->agent().GetStatus(sc.get(), {}, &status);
    ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    std::this_thread::sleep_for(100ms);
  }
  // The flood really went through the agent (~5 MB/s for 8 s).
  EXPECT_GT(LogBytes() - log_before, 20u << 20);
  std::fprintf(stderr, "agent RSS: %ld kB before the flood, at most %ld kB\n",
               rss_before, rss_max);

  // One stream more is refused, by name.
  corral::v1::StreamLogsRequest req;
  req.set_follow(true);
  auto c = AgentProcess::Context();
  auto extra = stubs[0]->StreamLogs(c.get(), req);
  corral::v1::LogLine line;
  EXPECT_FALSE(extra->Read(&line));
  grpc::Status s = extra->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(),
              HasSubstr("too many streams (" + std::to_string(kMaxStreams)));

  // Closing one frees its place.
  open.contexts.back()->TryCancel();
  open.logs.back()->Finish();
  open.logs.pop_back();
  open.contexts.pop_back();
  ASSERT_TRUE(WaitFor([&] {
    auto c2 = AgentProcess::Context();
    corral::v1::WatchEventsRequest none;
    auto r = stubs[1]->WatchEvents(c2.get(), none);
    r->WaitForInitialMetadata();
    c2->TryCancel();
    return r->Finish().error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED;
  }));
}

TEST_F(StreamLimitsTest, ASlowReaderIsToldHowManyLinesItMissed) {
  corral::v1::StreamLogsRequest req;
  req.set_follow(true);
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + 50s);
  auto reader = agent_->agent().StreamLogs(c.get(), req);
  reader->WaitForInitialMetadata();
  Flood();
  corral::v1::LogLine line;
  ASSERT_TRUE(reader->Read(&line));
  // Stop reading while the worker writes well past the ring's 16 MiB.
  const uintmax_t from = LogBytes();
  ASSERT_TRUE(WaitFor([&] { return LogBytes() - from > (40u << 20); }, 30s));
  uint64_t missed = 0;
  int read = 0;
  while (missed == 0 && reader->Read(&line)) {
    missed = line.dropped_before();
    ++read;
  }
  EXPECT_GT(missed, 1000u) << "after " << read << " lines";
  std::fprintf(stderr, "the slow reader missed %lu lines after %d\n",
               static_cast<unsigned long>(missed), read);
  // The stream goes on after the gap.
  ASSERT_TRUE(reader->Read(&line));
  EXPECT_EQ(line.dropped_before(), 0u);
  c->TryCancel();
  reader->Finish();
}

}  // namespace
}  // namespace corral::testing
