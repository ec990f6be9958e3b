// corral.v1.Agent's unary calls and the control socket, against a real
// corral-agent with real (shell) workers, through its real unix socket.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <set>

#include "tests/rpc/agent_process.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using HealthResponse = grpc::health::v1::HealthCheckResponse;

class AgentRpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    agent_ = AgentProcess::Start(TestAgentFlags(), AgentProcess::ShellWorker());
    ASSERT_NE(agent_, nullptr);
    ASSERT_TRUE(agent_->WaitReady(2)) << agent_->Log();
  }
  void TearDown() override {
    if (HasFailure() && agent_)
      std::fprintf(stderr, "%s", agent_->Log().c_str());
  }

  HealthResponse::ServingStatus Health(const std::string& service) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    HealthResponse response;
    auto context = AgentProcess::Context();
    grpc::Status s = agent_->health().Check(context.get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.status();
  }

  grpc::Status Scale(std::optional<int> workers,
                     corral::v1::ScaleResponse* response = nullptr) {
    corral::v1::ScaleRequest request;
    if (workers) request.set_workers(*workers);
    if (!workers) request.set_auto_workers(true);
    corral::v1::ScaleResponse ignored;
    auto context = AgentProcess::Context();
    return agent_->agent().Scale(context.get(), request,
                                 response ? response : &ignored);
  }

  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(AgentRpcTest, GetStatusReportsTheAgentAndEveryWorker) {
  corral::v1::GetStatusResponse s = agent_->Status();
  EXPECT_EQ(s.state(), corral::v1::AGENT_STATE_RUNNING);
  EXPECT_EQ(s.pid(), agent_->pid());
  EXPECT_FALSE(s.pid1());
  EXPECT_TRUE(s.ready());
  EXPECT_EQ(s.ready_workers(), 2);
  EXPECT_EQ(s.min_ready(), 1);
  EXPECT_EQ(s.target_workers(), 2);
  EXPECT_FALSE(s.auto_workers());
  EXPECT_FALSE(s.version().empty());
  EXPECT_GT(s.sizing().affinity_cpus(), 0);
  EXPECT_FALSE(s.sizing().decision().empty());
  ASSERT_EQ(s.command_size(), 3);
  EXPECT_EQ(s.command(0), "/bin/sh");
  ASSERT_EQ(s.workers_size(), 2);
  for (int i = 0; i < 2; ++i) {
    const corral::v1::Worker& w = s.workers(i);
    EXPECT_EQ(w.slot(), i);
    EXPECT_EQ(w.generation(), 1);
    EXPECT_GT(w.pid(), 0);
    EXPECT_EQ(w.state(), corral::v1::WORKER_STATE_READY);
    EXPECT_TRUE(w.has_started_at());
    EXPECT_TRUE(w.has_ready_since());
    EXPECT_EQ(w.restarts(), 0);
  }
  // RSS is sampled once a second.
  EXPECT_TRUE(
      WaitFor([&] { return agent_->Status().workers(0).rss_bytes() > 0; }));
}

TEST_F(AgentRpcTest, ControlSocketIsOwnerOnly) {
  struct stat st;
  ASSERT_EQ(stat(agent_->socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(st.st_uid, geteuid());
}

TEST_F(AgentRpcTest, ScaleUpDownAndAuto) {
  corral::v1::ScaleResponse r;
  ASSERT_TRUE(Scale(3, &r).ok());
  EXPECT_EQ(r.previous_workers(), 2);
  EXPECT_EQ(r.target_workers(), 3);
  EXPECT_FALSE(r.auto_workers());
  ASSERT_TRUE(agent_->WaitReady(3)) << agent_->Log();
  ASSERT_TRUE(Scale(1, &r).ok());
  EXPECT_TRUE(WaitFor([&] { return agent_->Status().workers_size() == 1; }));
  ASSERT_TRUE(Scale(std::nullopt, &r).ok());
  EXPECT_TRUE(r.auto_workers());
  EXPECT_TRUE(agent_->Status().auto_workers());
}

TEST_F(AgentRpcTest, ScaleRejectsBadCounts) {
  for (int bad : {-1, 0}) {
    grpc::Status s = Scale(bad);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(s.error_message(), HasSubstr("minimum is 1"));
  }
  grpc::Status s = Scale(100000);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("the default ceiling is"));
  EXPECT_THAT(s.error_message(), HasSubstr("--max-workers=N raises it"));
  // Neither a count nor auto.
  corral::v1::ScaleRequest empty;
  corral::v1::ScaleResponse response;
  auto context = AgentProcess::Context();
  s = agent_->agent().Scale(context.get(), empty, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(agent_->Status().target_workers(), 2);
}

TEST_F(AgentRpcTest, ScaleWithProgressStreamsThePlanThenEachSlot) {
  corral::v1::ScaleRequest request;
  request.set_workers(3);
  auto context = AgentProcess::Context();  // 10 s: the worker READY in ms
  auto reader = agent_->agent().ScaleWithProgress(context.get(), request);
  std::vector<corral::v1::ScaleProgress> got;
  corral::v1::ScaleProgress p;
  while (reader->Read(&p)) got.push_back(p);
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].phase(), corral::v1::ScaleProgress::PLANNED);
  EXPECT_EQ(got[0].plan().previous_workers(), 2);
  EXPECT_EQ(got[0].plan().target_workers(), 3);
  ASSERT_EQ(got[0].plan().starting_size(), 1);
  EXPECT_EQ(got[0].plan().starting(0), 2);
  EXPECT_EQ(got[1].phase(), corral::v1::ScaleProgress::WORKER_READY);
  EXPECT_EQ(got[1].worker(), 2);
  EXPECT_GT(got[1].pid(), 0);
  EXPECT_EQ(got[2].phase(), corral::v1::ScaleProgress::FINISHED);
  EXPECT_EQ(got[2].done(), 1);
  // A refusal ends the stream before any message.
  request.set_workers(0);
  auto refused_context = AgentProcess::Context();
  auto refused =
      agent_->agent().ScaleWithProgress(refused_context.get(), request);
  EXPECT_FALSE(refused->Read(&p));
  EXPECT_EQ(refused->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(AgentRpcMaxWorkers, ScaleOverMaxWorkersIsInvalid) {
  auto agent = AgentProcess::Start(TestAgentFlags({"--max-workers=3"}),
                                   AgentProcess::ShellWorker());
  ASSERT_NE(agent, nullptr);
  corral::v1::ScaleRequest request;
  request.set_workers(4);
  corral::v1::ScaleResponse response;
  auto context = AgentProcess::Context();
  grpc::Status s = agent->agent().Scale(context.get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("--max-workers is 3"));
}

TEST_F(AgentRpcTest, DrainFlipsReadinessAtOnceAndResumeRestores) {
  EXPECT_EQ(Health("readiness"), HealthResponse::SERVING);
  corral::v1::DrainResponse drained;
  auto context = AgentProcess::Context();
  ASSERT_TRUE(agent_->agent().Drain(context.get(), {}, &drained).ok());
  EXPECT_EQ(drained.drain_delay().nanos(), 100000000);
  // No waiting: readiness is off when Drain returns.
  EXPECT_EQ(Health("readiness"), HealthResponse::NOT_SERVING);
  EXPECT_EQ(Health(""), HealthResponse::NOT_SERVING);
  EXPECT_EQ(Health("liveness"), HealthResponse::SERVING);
  EXPECT_EQ(agent_->Status().state(), corral::v1::AGENT_STATE_DRAINING);
  // Workers stop after the drain delay; the agent stays.
  EXPECT_TRUE(WaitFor([&] {
    const corral::v1::GetStatusResponse s = agent_->Status();
    for (const auto& w : s.workers()) {
      if (w.pid() != 0) return false;
    }
    return true;
  }));
  corral::v1::DrainResponse again;
  context = AgentProcess::Context();
  EXPECT_EQ(agent_->agent().Drain(context.get(), {}, &again).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  grpc::Status scaled = Scale(3);
  EXPECT_EQ(scaled.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(scaled.error_message(), HasSubstr("resume first"));
  corral::v1::ResumeResponse resumed;
  context = AgentProcess::Context();
  ASSERT_TRUE(agent_->agent().Resume(context.get(), {}, &resumed).ok());
  ASSERT_TRUE(agent_->WaitReady(2)) << agent_->Log();
  EXPECT_TRUE(
      WaitFor([&] { return Health("readiness") == HealthResponse::SERVING; }));
}

TEST_F(AgentRpcTest, ResumeWhenNotDrainedFails) {
  corral::v1::ResumeResponse response;
  auto context = AgentProcess::Context();
  grpc::Status s = agent_->agent().Resume(context.get(), {}, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("not drained"));
}

TEST_F(AgentRpcTest, ShutdownStopsTheAgentCleanly) {
  corral::v1::ShutdownResponse response;
  auto context = AgentProcess::Context();
  ASSERT_TRUE(agent_->agent().Shutdown(context.get(), {}, &response).ok());
  EXPECT_EQ(agent_->Wait(std::chrono::seconds(10)), 0) << agent_->Log();
  // The socket file goes with the agent.
  struct stat st;
  EXPECT_NE(stat(agent_->socket().c_str(), &st), 0);
}

TEST_F(AgentRpcTest, RestartWorkerReplacesOneWorkerGracefully) {
  const corral::v1::GetStatusResponse before = agent_->Status();
  corral::v1::RestartWorkerRequest request;
  request.set_worker(1);
  corral::v1::RestartWorkerResponse response;
  auto context = AgentProcess::Context();
  grpc::Status s =
      agent_->agent().RestartWorker(context.get(), request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.worker(), 1);
  EXPECT_EQ(response.old_pid(), before.workers(1).pid());
  EXPECT_NE(response.new_pid(), response.old_pid());
  // The old process is listed (STOPPING) until it has exited.
  corral::v1::GetStatusResponse after;
  ASSERT_TRUE(WaitFor([&] {
    after = agent_->Status();
    return after.workers_size() == 2 && after.ready_workers() == 2;
  }));
  EXPECT_EQ(after.workers(0).pid(), before.workers(0).pid());
  EXPECT_EQ(after.workers(1).pid(), response.new_pid());
  EXPECT_EQ(after.workers(1).generation(), 2);
}

TEST_F(AgentRpcTest, RestartUnknownWorkerIsNotFound) {
  for (int slot : {2, 99, -1}) {
    corral::v1::RestartWorkerRequest request;
    request.set_worker(slot);
    corral::v1::RestartWorkerResponse response;
    auto context = AgentProcess::Context();
    grpc::Status s =
        agent_->agent().RestartWorker(context.get(), request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << slot;
    EXPECT_THAT(s.error_message(), HasSubstr("numbered 0 to 1"));
  }
}

TEST_F(AgentRpcTest, RestartWhoseReplacementFailsIsAborted) {
  std::FILE* f = std::fopen((agent_->dir() + "/fail-new").c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  const int old_pid = agent_->Status().workers(0).pid();
  corral::v1::RestartWorkerRequest request;
  request.set_worker(0);
  corral::v1::RestartWorkerResponse response;
  auto context = AgentProcess::Context();
  grpc::Status s =
      agent_->agent().RestartWorker(context.get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_THAT(s.error_message(), HasSubstr("old worker keeps serving"));
  EXPECT_EQ(agent_->Status().workers(0).pid(), old_pid);
}

TEST_F(AgentRpcTest, SignalWorkerReachesItsProcessGroup) {
  corral::v1::SignalWorkerRequest request;
  request.set_worker(1);
  request.set_signal("usr1");
  corral::v1::SignalWorkerResponse response;
  auto context = AgentProcess::Context();
  grpc::Status s =
      agent_->agent().SignalWorker(context.get(), request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.signal(), "SIGUSR1");
  EXPECT_EQ(response.pid(), agent_->Status().workers(1).pid());
  EXPECT_TRUE(WaitFor([&] {
    return agent_->Log().find("worker 1 got USR1") != std::string::npos;
  })) << agent_->Log();
}

TEST_F(AgentRpcTest, SignalWorkerErrors) {
  struct Case {
    int worker;
    std::string signal;
    grpc::StatusCode code;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {0, "SIGNOPE", grpc::StatusCode::INVALID_ARGUMENT, "unknown signal"},
           {0, "", grpc::StatusCode::INVALID_ARGUMENT, "unknown signal"},
           {0, "0", grpc::StatusCode::INVALID_ARGUMENT, "unknown signal"},
           {0, "65", grpc::StatusCode::INVALID_ARGUMENT, "unknown signal"},
           {5, "USR1", grpc::StatusCode::NOT_FOUND, "no worker 5"}}) {
    corral::v1::SignalWorkerRequest request;
    request.set_worker(c.worker);
    request.set_signal(c.signal);
    corral::v1::SignalWorkerResponse response;
    auto context = AgentProcess::Context();
    grpc::Status s =
        agent_->agent().SignalWorker(context.get(), request, &response);
    EXPECT_EQ(s.error_code(), c.code) << c.signal;
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
  }
}

TEST_F(AgentRpcTest, HealthOnTheControlSocket) {
  EXPECT_EQ(Health("liveness"), HealthResponse::SERVING);
  EXPECT_EQ(Health("readiness"), HealthResponse::SERVING);
  EXPECT_EQ(Health(""), HealthResponse::SERVING);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("database");
  HealthResponse response;
  auto context = AgentProcess::Context();
  grpc::Status s = agent_->health().Check(context.get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("liveness"));
}

TEST_F(AgentRpcTest, ManyConcurrentCallsAllAnswer) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        corral::v1::GetStatusResponse s;
        auto context = AgentProcess::Context();
        if (agent_->agent().GetStatus(context.get(), {}, &s).ok()) ok++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 400);
}

// --- the socket file
// -----------------------------------------------------------

TEST(ControlSocket, ReplacesAStaleSocketFile) {
  TempDir dir;
  const std::string path = dir.path() + "/stale.sock";
  // A socket file nobody listens on: what a SIGKILLed agent leaves.
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);
  auto agent = AgentProcess::Start(TestAgentFlags({"--control-socket=" + path}),
                                   AgentProcess::ShellWorker());
  ASSERT_NE(agent, nullptr);
  // A second agent on the same socket refuses to start, saying why.
  auto second =
      AgentProcess::Launch(TestAgentFlags({"--control-socket=" + path}),
                           AgentProcess::ShellWorker());
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->Wait(std::chrono::seconds(10)), 1);
  EXPECT_THAT(second->Log(), HasSubstr("another process"));
  EXPECT_EQ(agent->Status().pid(), agent->pid());
}

TEST(ControlSocket, CreatesItsDirectory) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/run/corral";
  auto agent = AgentProcess::Start(
      TestAgentFlags({"--control-socket=" + dir + "/agent.sock"}),
      AgentProcess::ShellWorker());
  ASSERT_NE(agent, nullptr);
  struct stat st;
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700);
}

}  // namespace
}  // namespace corral::testing
