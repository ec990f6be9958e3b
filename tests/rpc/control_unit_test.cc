// The control plane's protobuf-free parts on fakes: health state and its
// publisher (readiness from events, liveness from the loop answering),
// pending calls, the streams' shared rings and cap, and the Prometheus
// rendering.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <deque>
#include <mutex>
#include <thread>

#include "agent/core/control.h"
#include "agent/http/metrics.h"
#include "agent/os/steady_clock.h"
#include "agent/rpc/health_publisher.h"
#include "agent/rpc/health_state.h"
#include "agent/rpc/pending_calls.h"
#include "agent/rpc/stream_fanout.h"
#include "tests/rpc/agent_process.h"
#include "tests/unit/supervisor_fakes.h"

namespace corral::agent {
namespace {

using ::testing::HasSubstr;

// An AgentControl whose "loop" is the test thread: Post() only queues, and
// RunPosted() runs what is queued. Events of its real Supervisor (on fakes)
// reach the observers. Only what the health publisher uses is answered.
class FakeAgent : public AgentControl, public EventSink {
 public:
  FakeAgent()
      : supervisor_(Config(), &clock_, &processes_, this, [] { return 0.5; }) {}

  static SupervisorConfig Config() {
    SupervisorConfig c;
    c.workers = 1;
    c.drain_delay = std::chrono::seconds(5);
    return c;
  }

  void RunPosted() {
    std::deque<std::function<void()>> ready;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready.swap(posted_);
    }
    for (auto& fn : ready) fn();
  }
  Supervisor& supervisor() { return supervisor_; }
  size_t observers() const { return observers_.size(); }

  // EventSink
  void Emit(const Event& e) override {
    for (auto& [id, fn] : std::map(observers_)) fn(e);
  }

  // AgentControl
  void Post(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    posted_.push_back(std::move(fn));
  }
  // Real time: the liveness timeout runs on the real io thread.
  const Clock& clock() const override { return steady_; }
  AgentStatus Status() const override { return {}; }
  bool Ready() const override { return supervisor_.Ready(1); }
  bool stopping() const override { return false; }
  absl::Status CheckWorker(int) const override { return Unused(); }
  absl::StatusOr<WorkerDetails> DescribeWorker(int) const override {
    return Unused();
  }
  absl::StatusOr<ScaleResult> Scale(std::optional<int>,
                                    ScaleProgressFn) override {
    return Unused();
  }
  absl::StatusOr<DrainResult> Drain() override { return Unused(); }
  absl::Status Resume() override { return Unused(); }
  void Shutdown(bool) override {}
  absl::StatusOr<SignalResult> SignalWorker(int, int) override {
    return Unused();
  }
  absl::Status Reload(std::shared_ptr<RolloutObserver>) override {
    return Unused();
  }
  absl::Status RestartWorker(
      int, std::function<void(absl::StatusOr<RestartResult>)>) override {
    return Unused();
  }
  int AddEventObserver(std::function<void(const Event&)> fn) override {
    observers_[next_] = std::move(fn);
    return next_++;
  }
  int AddLogObserver(std::function<void(const LogRecordPtr&)>) override {
    return next_++;
  }
  void RemoveObserver(int id) override { observers_.erase(id); }

 private:
  static absl::Status Unused() {
    return absl::UnimplementedError("not used by these tests");
  }

  SteadyClock steady_;
  FakeClock clock_;
  FakeProcesses processes_;
  Supervisor supervisor_;
  std::mutex mu_;
  std::deque<std::function<void()>> posted_;
  std::map<int, std::function<void(const Event&)>> observers_;
  int next_ = 1;
};

class HealthPublisherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    work_.reset();
    io_.stop();
    io_thread_.join();
    publisher_.Stop();
  }

  FakeAgent agent_;
  HealthState state_;
  boost::asio::io_context io_;
  std::optional<
      boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      work_{io_.get_executor()};
  HealthPublisher publisher_{&agent_, &state_, &io_};
  std::thread io_thread_;
};

TEST_F(HealthPublisherTest, ReadinessFollowsEventsAndLivenessTheLoop) {
  // Start() runs on the owner's thread before the io thread matters.
  boost::asio::post(io_, [this] { publisher_.Start(); });
  EXPECT_EQ(state_.Get("liveness"), false);  // the loop never answered
  // The loop answers: live; no worker READY yet: not ready.
  ASSERT_TRUE(corral::testing::WaitFor([&] {
    agent_.RunPosted();
    return state_.Get("liveness") == true;
  }));
  EXPECT_EQ(state_.Get("readiness"), false);
  EXPECT_EQ(agent_.observers(), 1u);

  // A worker becomes READY: the worker_ready event publishes readiness in
  // the same loop turn, no heartbeat needed.
  agent_.supervisor().Start();
  NotifyMessage ready;
  ready.ready = true;
  agent_.supervisor().OnNotify(100, ready);
  EXPECT_EQ(state_.Get("readiness"), true);
  EXPECT_EQ(state_.Get(""), true);

  // Drain: not ready at once.
  ASSERT_TRUE(agent_.supervisor().Drain().ok());
  EXPECT_EQ(state_.Get("readiness"), false);
  EXPECT_EQ(state_.Get("liveness"), true);
  ASSERT_TRUE(agent_.supervisor().Resume().ok());

  // The loop stops answering: after a second, not live and not ready.
  const auto stalled = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      corral::testing::WaitFor([&] { return state_.Get("liveness") == false; },
                               std::chrono::seconds(3)));
  EXPECT_GE(std::chrono::steady_clock::now() - stalled,
            std::chrono::milliseconds(800));
  EXPECT_EQ(state_.Get("readiness"), false);
  // It answers again.
  agent_.RunPosted();
  EXPECT_EQ(state_.Get("liveness"), true);
}

TEST(HealthState, WatchersSeeTheCurrentStatusThenChanges) {
  HealthState state;
  std::vector<std::optional<bool>> seen;
  const int id = state.Watch("readiness",
                             [&](std::optional<bool> s) { seen.push_back(s); });
  state.SetReady(false);  // no change: nothing sent
  state.SetReady(true);
  state.SetLive(true);  // another service
  state.SetReady(false);
  state.Unwatch(id);
  state.SetReady(true);
  EXPECT_EQ(seen, (std::vector<std::optional<bool>>{false, true, false}));
  std::vector<std::optional<bool>> unknown;
  state.Watch("db", [&](std::optional<bool> s) { unknown.push_back(s); });
  EXPECT_EQ(unknown, (std::vector<std::optional<bool>>{std::nullopt}));
  EXPECT_EQ(state.Get("db"), std::nullopt);
}

TEST(HealthState, ShutdownIsFinal) {
  HealthState state;
  state.SetLive(true);
  state.SetReady(true);
  state.Shutdown();
  state.SetLive(true);
  state.SetReady(true);
  EXPECT_EQ(state.Get("liveness"), false);
  EXPECT_EQ(state.Get("readiness"), false);
  EXPECT_EQ(state.Get(""), false);
}

TEST(PendingCalls, EachCallIsFinishedOnce) {
  PendingCalls calls;
  int abandoned = 0;
  const uint64_t answered = calls.Add([&] { ++abandoned; });
  const uint64_t waiting = calls.Add([&] { ++abandoned; });
  EXPECT_TRUE(calls.Take(answered));
  EXPECT_FALSE(calls.Take(answered));
  calls.AbandonAll();
  EXPECT_EQ(abandoned, 1);
  EXPECT_FALSE(calls.Take(waiting));  // the loop answers too late: no-op
  EXPECT_EQ(calls.Add([&] { ++abandoned; }), 0u);  // closed
  calls.AbandonAll();
  EXPECT_EQ(abandoned, 1);
}

TEST(StreamFanout, OneCopyOfEachEventWithinItsBudgetAndACapOnStreams) {
  FakeAgent agent;
  StreamFanout fanout(
      &agent, {.event_bytes = 8192, .log_bytes = 8192, .max_streams = 2});
  const size_t before = agent.observers();
  fanout.Start();
  agent.RunPosted();  // subscribes on the loop
  EXPECT_EQ(agent.observers(), before + 1);
  const uint64_t first = fanout.events().end_seq();
  for (int i = 0; i < 100; ++i) {
    agent.Emit(
        Event{Level::kInfo, "worker_status", std::string(200, 'x'), {}}.With(
            "worker", int64_t{0}));
  }
  EXPECT_EQ(fanout.events().end_seq(), first + 100);
  EXPECT_LE(fanout.events().bytes(), 8192u) << "the budget holds";
  EXPECT_GT(fanout.events().bytes(), 4096u) << "and is used";

  EXPECT_TRUE(fanout.TryAcquire());
  EXPECT_TRUE(fanout.TryAcquire());
  EXPECT_FALSE(fanout.TryAcquire()) << "the third stream is one too many";
  fanout.Release();
  EXPECT_TRUE(fanout.TryAcquire());
  fanout.Release();
  fanout.Release();
  fanout.Stop();
  EXPECT_EQ(agent.observers(), before);
}

TEST(Metrics, RendersPrometheusText) {
  MetricsSnapshot s;
  s.workers = {{0, WorkerState::kReady, 2, 1.5, 4096},
               {1, WorkerState::kBackoff, 7, 0, 0}};
  s.by_state[static_cast<int>(WorkerState::kReady)] = 1;
  s.by_state[static_cast<int>(WorkerState::kBackoff)] = 1;
  s.target_workers = 2;
  s.ready = true;
  s.restarts_total = 9;
  s.counters.orphans_reaped = 3;
  s.counters.log_lines_dropped = 4;
  s.counters.notify_rejected = 5;
  s.counters.log_lines_dropped_by_source = {{-1, 1}, {1, 3}};
  const std::string text = RenderPrometheus(s);
  for (const char* line :
       {"# TYPE corral_worker_state gauge\n",
        "corral_worker_state{worker=\"0\",state=\"READY\"} 1\n",
        "corral_worker_state{worker=\"0\",state=\"BACKOFF\"} 0\n",
        "corral_worker_state{worker=\"1\",state=\"BACKOFF\"} 1\n",
        "corral_worker_restarts_total{worker=\"1\"} 7\n",
        "corral_worker_cpu_seconds_total{worker=\"0\"} 1.5\n",
        "corral_worker_resident_memory_bytes{worker=\"0\"} 4096\n",
        "corral_workers{state=\"READY\"} 1\n",
        "corral_workers{state=\"STOPPING\"} 0\n",
        "corral_workers{state=\"STOPPED\"} 0\n", "corral_workers_target 2\n",
        "corral_ready 1\n", "corral_draining 0\n", "corral_restarts_total 9\n",
        "# TYPE corral_orphans_reaped_total counter\n",
        "corral_orphans_reaped_total 3\n", "corral_log_lines_dropped_total 4\n",
        "corral_notify_rejected_total 5\n",
        "corral_worker_log_lines_dropped_total{worker=\"1\"} 3\n"}) {
    EXPECT_THAT(text, HasSubstr(line));
  }
  EXPECT_EQ(text.back(), '\n');
}

}  // namespace
}  // namespace corral::agent
