// corral.v1.Agent's streaming calls (Reload, WatchEvents, StreamLogs) and
// health Watch, against a real corral-agent: progress, errors, clients that
// go away mid-stream, and streams that end when the agent stops. Every call
// has a deadline (AgentProcess::Context): a stream the agent never ends
// fails the test with DEADLINE_EXCEEDED instead of hanging its read loop.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstdio>
#include <thread>

#include "tests/rpc/agent_process.h"

extern char** environ;

namespace corral::testing {
namespace {

using corral::v1::ReloadProgress;
using ::testing::HasSubstr;

class AgentStreamTest : public ::testing::Test {
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

  // Reads a whole Reload stream.
  grpc::Status Reload(std::vector<ReloadProgress>* progress) {
    auto context = AgentProcess::Context();
    auto reader = agent_->agent().Reload(context.get(), {});
    ReloadProgress p;
    while (reader->Read(&p)) progress->push_back(p);
    return reader->Finish();
  }

  void Drain() {
    corral::v1::DrainResponse response;
    auto context = AgentProcess::Context();
    ASSERT_TRUE(agent_->agent().Drain(context.get(), {}, &response).ok());
  }

  std::unique_ptr<AgentProcess> agent_;
};

// --- Reload
// -------------------------------------------------------------------

TEST_F(AgentStreamTest, ReloadStreamsProgressPerSlot) {
  const corral::v1::GetStatusResponse before = agent_->Status();
  std::vector<ReloadProgress> progress;
  grpc::Status s = Reload(&progress);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(progress.size(), 4u);
  EXPECT_EQ(progress[0].phase(), ReloadProgress::STARTED);
  EXPECT_EQ(progress[0].total(), 2);
  for (int slot = 0; slot < 2; ++slot) {
    const ReloadProgress& p = progress[1 + slot];
    EXPECT_EQ(p.phase(), ReloadProgress::SLOT_DONE);
    EXPECT_EQ(p.worker(), slot);
    EXPECT_EQ(p.old_pid(), before.workers(slot).pid());
    EXPECT_NE(p.new_pid(), p.old_pid());
    EXPECT_EQ(p.done(), slot + 1);
  }
  EXPECT_EQ(progress[3].phase(), ReloadProgress::FINISHED);
  corral::v1::GetStatusResponse after;
  ASSERT_TRUE(WaitFor([&] {
    after = agent_->Status();
    return after.workers_size() == 2 && after.ready_workers() == 2;
  }));
  EXPECT_EQ(after.workers(0).pid(), progress[1].new_pid());
  EXPECT_EQ(after.workers(1).pid(), progress[2].new_pid());
}

TEST_F(AgentStreamTest, ReloadWhileDrainedIsAFailedPrecondition) {
  Drain();
  std::vector<ReloadProgress> progress;
  grpc::Status s = Reload(&progress);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("resume before reloading"));
  EXPECT_TRUE(progress.empty());
}

TEST_F(AgentStreamTest, ReloadWhoseReplacementFailsStopsAndKeepsTheOld) {
  std::FILE* f = std::fopen((agent_->dir() + "/fail-new").c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  const corral::v1::GetStatusResponse before = agent_->Status();
  std::vector<ReloadProgress> progress;
  grpc::Status s = Reload(&progress);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_THAT(s.error_message(), HasSubstr("reload stopped at worker 0"));
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().phase(), ReloadProgress::ABORTED);
  EXPECT_EQ(progress.back().worker(), 0);
  const corral::v1::GetStatusResponse after = agent_->Status();
  EXPECT_EQ(after.workers(0).pid(), before.workers(0).pid());
  EXPECT_EQ(after.workers(1).pid(), before.workers(1).pid());
}

TEST_F(AgentStreamTest, SecondReloadWhileOneRunsIsRefused) {
  auto context = AgentProcess::Context();
  auto first = agent_->agent().Reload(context.get(), {});
  ReloadProgress p;
  ASSERT_TRUE(first->Read(&p));  // STARTED: the first one runs
  std::vector<ReloadProgress> progress;
  grpc::Status s = Reload(&progress);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("already in progress"));
  while (first->Read(&p)) {
  }
  EXPECT_TRUE(first->Finish().ok());
}

// --- WatchEvents
// ----------------------------------------------------------------

TEST_F(AgentStreamTest, WatchEventsSendsEventsWithTheirFields) {
  auto context = AgentProcess::Context();
  corral::v1::WatchEventsRequest request;
  request.add_names("worker_spawned");
  request.add_names("scaled");
  auto reader = agent_->agent().WatchEvents(context.get(), request);
  // The headers come once the watch is in place.
  reader->WaitForInitialMetadata();
  corral::v1::ScaleRequest scale;
  scale.set_workers(3);
  corral::v1::ScaleResponse scaled;
  auto call = AgentProcess::Context();
  ASSERT_TRUE(agent_->agent().Scale(call.get(), scale, &scaled).ok());
  corral::v1::Event e;
  ASSERT_TRUE(reader->Read(&e));
  EXPECT_EQ(e.name(), "scaled");
  EXPECT_EQ(e.fields().fields().at("to").number_value(), 3);
  ASSERT_TRUE(reader->Read(&e));
  EXPECT_EQ(e.name(), "worker_spawned");
  EXPECT_EQ(e.level(), "info");
  EXPECT_EQ(e.fields().fields().at("worker").number_value(), 2);
  EXPECT_GT(e.fields().fields().at("pid").number_value(), 0);
  EXPECT_TRUE(e.has_time());
  EXPECT_THAT(e.message(), HasSubstr("worker 2"));
  context->TryCancel();
  while (reader->Read(&e)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(AgentStreamTest, StreamsEndWhenTheAgentStops) {
  auto events_context = AgentProcess::Context();
  auto events = agent_->agent().WatchEvents(events_context.get(), {});
  auto logs_context = AgentProcess::Context();
  corral::v1::StreamLogsRequest follow;
  follow.set_follow(true);
  auto logs = agent_->agent().StreamLogs(logs_context.get(), follow);
  events->WaitForInitialMetadata();
  logs->WaitForInitialMetadata();
  agent_->Signal(SIGTERM);
  std::vector<std::string> names;
  corral::v1::Event e;
  while (events->Read(&e)) names.push_back(e.name());
  EXPECT_TRUE(events->Finish().ok());
  EXPECT_THAT(names, ::testing::Contains("shutdown_started"));
  EXPECT_EQ(names.back(), "shutdown_finished");
  corral::v1::LogLine line;
  while (logs->Read(&line)) {
  }
  EXPECT_TRUE(logs->Finish().ok());
  EXPECT_EQ(agent_->Wait(std::chrono::seconds(10)), 0);
}

// --- StreamLogs
// -----------------------------------------------------------------

std::vector<corral::v1::LogLine> Tail(AgentProcess& agent,
                                      std::optional<int> worker, int tail,
                                      grpc::Status* status) {
  corral::v1::StreamLogsRequest request;
  if (worker) request.set_worker(*worker);
  request.set_tail(tail);
  auto context = AgentProcess::Context();
  auto reader = agent.agent().StreamLogs(context.get(), request);
  std::vector<corral::v1::LogLine> lines;
  corral::v1::LogLine line;
  while (reader->Read(&line)) lines.push_back(line);
  *status = reader->Finish();
  return lines;
}

TEST_F(AgentStreamTest, StreamLogsTailsAllOrOneWorker) {
  grpc::Status s;
  ASSERT_TRUE(WaitFor(
      [&] { return Tail(*agent_, std::nullopt, 100, &s).size() == 2; }));
  std::vector<corral::v1::LogLine> one = Tail(*agent_, 1, 100, &s);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].worker(), 1);
  EXPECT_EQ(one[0].stream(), "stdout");
  EXPECT_THAT(one[0].text(), HasSubstr("worker 1 gen 1"));
  EXPECT_EQ(one[0].pid(), agent_->Status().workers(1).pid());
  EXPECT_EQ(Tail(*agent_, std::nullopt, 1, &s).size(), 1u);
  EXPECT_TRUE(Tail(*agent_, std::nullopt, 0, &s).empty());
}

TEST_F(AgentStreamTest, StreamLogsErrors) {
  grpc::Status s;
  Tail(*agent_, 7, 10, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("no worker 7"));
  Tail(*agent_, std::nullopt, -5, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(AgentStreamTest, StreamLogsFollowsNewLines) {
  auto context = AgentProcess::Context();
  corral::v1::StreamLogsRequest request;
  request.set_worker(0);
  request.set_tail(10);
  request.set_follow(true);
  auto reader = agent_->agent().StreamLogs(context.get(), request);
  corral::v1::LogLine line;
  ASSERT_TRUE(reader->Read(&line));  // the tail: its start line
  EXPECT_THAT(line.text(), HasSubstr("worker 0 gen 1"));
  corral::v1::SignalWorkerRequest usr1;
  usr1.set_worker(0);
  usr1.set_signal("USR1");
  corral::v1::SignalWorkerResponse signalled;
  auto call = AgentProcess::Context();
  ASSERT_TRUE(agent_->agent().SignalWorker(call.get(), usr1, &signalled).ok());
  // The shell may also report its `sleep` child killed by the signal.
  bool seen = false;
  while (!seen && reader->Read(&line)) {
    EXPECT_EQ(line.worker(), 0);
    seen = line.text() == "worker 0 got USR1";
  }
  EXPECT_TRUE(seen);
  context->TryCancel();
  while (reader->Read(&line)) {
  }
}

// --- clients that go away
// -------------------------------------------------------

TEST_F(AgentStreamTest, ClientsThatGoAwayMidStreamLeaveTheAgentWell) {
  for (int i = 0; i < 30; ++i) {
    auto events_context = AgentProcess::Context();
    auto events = agent_->agent().WatchEvents(events_context.get(), {});
    auto logs_context = AgentProcess::Context();
    corral::v1::StreamLogsRequest follow;
    follow.set_follow(true);
    follow.set_tail(5);
    auto logs = agent_->agent().StreamLogs(logs_context.get(), follow);
    corral::v1::LogLine line;
    ASSERT_TRUE(logs->Read(&line));
    // Gone without a word: cancelled, then the stubs destroyed.
    events_context->TryCancel();
    logs_context->TryCancel();
  }
  // Whole client processes killed mid-stream.
  for (int i = 0; i < 3; ++i) {
    std::vector<std::string> args = {CORRALCTL_PATH, "--socket",
                                     agent_->socket(), "logs", "-f"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    ASSERT_EQ(
        posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  // Observers of the dead streams are gone and the loop is fine: events
  // and logs still flow to a new stream, and calls still answer.
  auto context = AgentProcess::Context();
  corral::v1::StreamLogsRequest follow;
  follow.set_follow(true);
  auto logs = agent_->agent().StreamLogs(context.get(), follow);
  corral::v1::SignalWorkerRequest usr1;
  usr1.set_worker(1);
  usr1.set_signal("USR1");
  corral::v1::SignalWorkerResponse signalled;
  auto call = AgentProcess::Context();
  ASSERT_TRUE(agent_->agent().SignalWorker(call.get(), usr1, &signalled).ok());
  corral::v1::LogLine line;
  bool seen = false;
  while (!seen && logs->Read(&line)) seen = line.text() == "worker 1 got USR1";
  EXPECT_TRUE(seen);
  context->TryCancel();
  EXPECT_TRUE(agent_->WaitReady(2));
}

// --- health Watch
// ---------------------------------------------------------------

TEST_F(AgentStreamTest, HealthWatchSendsChanges) {
  using grpc::health::v1::HealthCheckResponse;
  auto context = AgentProcess::Context();
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("readiness");
  auto reader = agent_->health().Watch(context.get(), request);
  HealthCheckResponse r;
  ASSERT_TRUE(reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::SERVING);
  Drain();
  ASSERT_TRUE(reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::NOT_SERVING);
  // An unknown service is not an error for Watch: SERVICE_UNKNOWN, open.
  auto unknown_context = AgentProcess::Context();
  request.set_service("nope");
  auto unknown = agent_->health().Watch(unknown_context.get(), request);
  ASSERT_TRUE(unknown->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::SERVICE_UNKNOWN);
  unknown_context->TryCancel();
  context->TryCancel();
}

}  // namespace
}  // namespace corral::testing
