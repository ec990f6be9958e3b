// The control plane's door (LoopControl) on fakes: a real Supervisor on
// FakeProcesses, a CpuRescaler on FakeCgroupReader, time advanced by hand.
// Typed results, the process a signal reaches, rollout callbacks, and the
// error texts the control plane passes on unchanged.
#include "agent/core/loop_control.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "tests/unit/supervisor_fakes.h"

namespace corral::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

// Records a rollout's callbacks as "phase worker old new".
class RecordingRollout : public RolloutObserver {
 public:
  void OnStarted(const RolloutStep& s) override { Add("started", s); }
  void OnSlotDone(const RolloutStep& s) override { Add("slot_done", s); }
  void OnFinished(const RolloutStep& s) override { Add("finished", s); }
  void OnAborted(const RolloutStep& s) override { Add("aborted", s); }
  std::vector<std::string> seen;
  std::vector<RolloutStep> steps;

 private:
  void Add(const char* phase, const RolloutStep& s) {
    seen.push_back(
        absl::StrCat(phase, " ", s.worker, " ", s.old_pid, " ", s.new_pid));
    steps.push_back(s);
  }
};

class LoopControlTest : public ::testing::Test {
 protected:
  LoopControlTest()
      : dev_null_(open("/dev/null", O_WRONLY | O_CLOEXEC)),
        writer_(dev_null_, 1 << 20),
        logger_(LogFormat::kJson, &writer_),
        output_(&io_, &logger_, [](pid_t, std::string_view) {}),
        rescaler_(&reader_, {}, {}, std::nullopt, &sink_),
        memory_(&sink_) {}
  ~LoopControlTest() override { close(dev_null_); }

  void SetUp() override {
    reader_.SetCpus(/*affinity=*/4, /*cpus=*/2);
    SupervisorConfig config;
    config.workers = rescaler_.Start(/*fallback=*/1);
    sup_ = std::make_unique<Supervisor>(config, &clock_, &procs_, &sink_,
                                        [] { return 0.5; });
    sup_->Start();
    ReadyAll();
    LoopControl::Parts parts;
    parts.options = &options_;
    parts.clock = &clock_;
    parts.supervisor = sup_.get();
    parts.rescaler = &rescaler_;
    parts.memory = &memory_;
    parts.output = &output_;
    parts.logger = &logger_;
    parts.counters = &counters_;
    parts.post = [this](std::function<void()> fn) { posted_.push_back(fn); };
    parts.signal_group = [this](pid_t pgid, int sig) {
      signalled_.push_back({pgid, sig});
      return signal_result_;
    };
    control_ = std::make_unique<LoopControl>(std::move(parts));
  }
  void TearDown() override {
    control_.reset();
    sup_.reset();
  }

  void ReadyAll() { MarkStartingReady(*sup_); }
  pid_t PidOf(int slot, WorkerState state) const {
    for (const WorkerView& w : sup_->Workers()) {
      if (w.slot == slot && w.state == state) return w.pid;
    }
    return 0;
  }

  int dev_null_;
  LogWriter writer_;
  Logger logger_;
  boost::asio::io_context io_;
  WorkerOutput output_;
  Options options_;
  FakeClock clock_;
  FakeProcesses procs_;
  RecordingSink sink_;
  FakeCgroupReader reader_;
  CpuRescaler rescaler_;
  MemoryGuard memory_;
  AgentCounters counters_;
  std::unique_ptr<Supervisor> sup_;
  std::vector<std::function<void()>> posted_;
  std::vector<FakeProcesses::Signal> signalled_;
  absl::Status signal_result_;
  std::unique_ptr<LoopControl> control_;
};

TEST_F(LoopControlTest, SignalWorkerReachesTheSlotsProcessGroup) {
  const pid_t pid = PidOf(1, WorkerState::kReady);
  absl::StatusOr<SignalResult> r = control_->SignalWorker(1, SIGUSR1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->worker, 1);
  EXPECT_EQ(r->pid, pid);
  EXPECT_EQ(r->signal, SIGUSR1);
  ASSERT_EQ(signalled_.size(), 1u);
  EXPECT_EQ(signalled_[0].target, pid);
  // A failure of the signal itself is returned as it is.
  signal_result_ = absl::PermissionDeniedError("kill(-101, SIGUSR1): nope");
  r = control_->SignalWorker(1, SIGUSR1);
  EXPECT_EQ(r.status(), signal_result_);
}

TEST_F(LoopControlTest, DuringARollTheServingProcessIsSignalled) {
  const pid_t old = PidOf(0, WorkerState::kReady);
  ASSERT_TRUE(control_->RestartWorker(0, [](auto) {}).ok());
  const pid_t candidate = PidOf(0, WorkerState::kStarting);
  ASSERT_NE(candidate, 0);
  // The candidate is not serving yet: the old process is.
  EXPECT_EQ(control_->SignalWorker(0, SIGHUP)->pid, old);
  ReadyAll();  // the candidate takes over; the old one is STOPPING
  EXPECT_EQ(control_->SignalWorker(0, SIGHUP)->pid, candidate);
}

TEST_F(LoopControlTest, UnknownAndEmptySlotsAreNamedInTheError) {
  for (int slot : {7, -1}) {
    absl::StatusOr<SignalResult> r = control_->SignalWorker(slot, SIGHUP);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(Message(r.status()),
              absl::StrCat("no worker ", slot,
                           ": workers are numbered 0 to 1 (see corralctl ps)"));
    absl::Status restart = control_->RestartWorker(slot, [](auto) {});
    EXPECT_EQ(restart, r.status());
    EXPECT_EQ(control_->CheckWorker(slot), r.status());
  }
  EXPECT_TRUE(control_->CheckWorker(1).ok());
  // A slot whose process exited and waits for its restart has no process.
  const pid_t pid = PidOf(1, WorkerState::kReady);
  procs_.alive.erase(pid);
  procs_.fail_spawns = 1;
  sup_->OnExit(pid, ExitStatus::Exited(1));
  absl::StatusOr<SignalResult> r = control_->SignalWorker(1, SIGHUP);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(r.status()),
              HasSubstr("worker 1 has no running process"));
  EXPECT_TRUE(signalled_.empty());
}

TEST_F(LoopControlTest, RestartWorkerAnswersWithBothPidsOnceDone) {
  const pid_t old = PidOf(0, WorkerState::kReady);
  std::vector<absl::StatusOr<RestartResult>> answers;
  ASSERT_TRUE(
      control_
          ->RestartWorker(
              0, [&](absl::StatusOr<RestartResult> r) { answers.push_back(r); })
          .ok());
  EXPECT_TRUE(answers.empty());  // not before the new process is READY
  const pid_t candidate = PidOf(0, WorkerState::kStarting);
  ReadyAll();
  ASSERT_EQ(answers.size(), 1u);
  ASSERT_TRUE(answers[0].ok());
  EXPECT_EQ(answers[0]->worker, 0);
  EXPECT_EQ(answers[0]->old_pid, old);
  EXPECT_EQ(answers[0]->new_pid, candidate);
}

TEST_F(LoopControlTest, RestartWorkerWhoseReplacementFailsIsAborted) {
  procs_.fail_spawns = 1;
  std::vector<absl::StatusOr<RestartResult>> answers;
  ASSERT_TRUE(
      control_
          ->RestartWorker(
              1, [&](absl::StatusOr<RestartResult> r) { answers.push_back(r); })
          .ok());
  // The exec failure aborted the roll inside the call.
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(Message(answers[0].status()),
              HasSubstr("reload stopped at worker 1"));
}

TEST_F(LoopControlTest, ReloadObserverSeesEveryStepOfItsRollout) {
  const pid_t old0 = PidOf(0, WorkerState::kReady);
  const pid_t old1 = PidOf(1, WorkerState::kReady);
  auto observer = std::make_shared<RecordingRollout>();
  ASSERT_TRUE(control_->Reload(observer).ok());
  ASSERT_EQ(observer->steps.size(), 1u);
  EXPECT_EQ(observer->steps[0].total, 2);
  EXPECT_EQ(observer->steps[0].message, "rolling reload of 2 worker(s)");
  const pid_t new0 = PidOf(0, WorkerState::kStarting);
  ReadyAll();
  const pid_t new1 = PidOf(1, WorkerState::kStarting);
  ReadyAll();
  EXPECT_THAT(observer->seen,
              ElementsAre("started 0 0 0",
                          absl::StrCat("slot_done 0 ", old0, " ", new0),
                          absl::StrCat("slot_done 1 ", old1, " ", new1),
                          "finished 0 0 0"));
  EXPECT_EQ(observer->steps.back().message, "reload finished");
  // The next rollout (here: SIGHUP's) is not reported to it.
  ASSERT_TRUE(sup_->Reload().ok());
  EXPECT_EQ(observer->seen.size(), 4u);
}

TEST_F(LoopControlTest, ARefusedRolloutKeepsTheRunningOnesObserver) {
  auto first = std::make_shared<RecordingRollout>();
  ASSERT_TRUE(control_->Reload(first).ok());
  auto second = std::make_shared<RecordingRollout>();
  absl::Status s = control_->Reload(second);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(s), HasSubstr("already in progress"));
  EXPECT_EQ(control_->RestartWorker(1, [](auto) {}).code(),
            absl::StatusCode::kFailedPrecondition);
  ReadyAll();
  ReadyAll();
  EXPECT_EQ(first->seen.back(), "finished 0 0 0");
  EXPECT_TRUE(second->seen.empty());
}

TEST_F(LoopControlTest, ScaleDrainAndShutdownReturnWhatTheyDid) {
  absl::StatusOr<ScaleResult> up = control_->Scale(3, nullptr);
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->previous_workers, 2);
  EXPECT_EQ(up->target_workers, 3);
  EXPECT_FALSE(up->auto_workers);
  absl::StatusOr<ScaleResult> back = control_->Scale(std::nullopt, nullptr);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->previous_workers, 3);
  EXPECT_EQ(back->target_workers, 2);  // the CPU limit's count
  EXPECT_TRUE(back->auto_workers);

  absl::StatusOr<DrainResult> drained = control_->Drain();
  ASSERT_TRUE(drained.ok());
  EXPECT_EQ(drained->drain_delay, options_.drain_delay);
  EXPECT_EQ(control_->Status().mode, AgentMode::kDraining);
  EXPECT_FALSE(control_->Ready());
  EXPECT_EQ(control_->Drain().status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(control_->Resume().ok());
  EXPECT_EQ(control_->Status().mode, AgentMode::kRunning);

  control_->Shutdown(/*quick=*/false);
  control_->Shutdown(/*quick=*/false);  // not a second SIGTERM
  EXPECT_EQ(sink_.Count("shutdown_started"), 1);
  EXPECT_EQ(sink_.Count("shutdown_hurried"), 0);
  EXPECT_TRUE(control_->stopping());
  // stop --now skips only the drain delay: never a second SIGTERM, which
  // would cut the stop timeout short and SIGKILL in-flight work.
  control_->Shutdown(/*quick=*/true);
  control_->Shutdown(/*quick=*/true);
  EXPECT_EQ(sink_.Count("drain_delay_skipped"), 1);
  EXPECT_EQ(sink_.Count("shutdown_hurried"), 0);
  EXPECT_EQ(sink_.Count("worker_killed"), 0);
}

TEST_F(LoopControlTest, StatusIsASnapshotOfEveryPart) {
  counters_.orphans_reaped = 4;
  const pid_t pid = PidOf(0, WorkerState::kReady);
  memory_.Sample(clock_.Now(), {{pid, 2.5, 1 << 20}}, std::nullopt, *sup_);
  const AgentStatus s = control_->Status();
  EXPECT_EQ(s.pid, getpid());
  EXPECT_EQ(s.mode, AgentMode::kRunning);
  EXPECT_TRUE(s.ready);
  EXPECT_EQ(s.ready_workers, 2);
  EXPECT_EQ(s.min_ready, 1);
  EXPECT_EQ(s.target_workers, 2);
  EXPECT_TRUE(s.auto_workers);
  ASSERT_TRUE(s.sizing.decision.has_value());
  EXPECT_EQ(s.sizing.decision->workers, 2);
  EXPECT_EQ(s.counters.orphans_reaped, 4u);
  ASSERT_EQ(s.workers.size(), 2u);
  ASSERT_TRUE(s.workers[0].usage.has_value());
  EXPECT_EQ(s.workers[0].usage->cpu_seconds, 2.5);
  EXPECT_FALSE(s.workers[1].usage.has_value());
}

TEST_F(LoopControlTest, ObserversGetEventsUntilRemoved) {
  std::vector<std::string> names;
  const int id = control_->AddEventObserver(
      [&](const Event& e) { names.push_back(e.name); });
  control_->OnEvent(Event{Level::kInfo, "scaled", "", {}});
  control_->RemoveObserver(id);
  control_->OnEvent(Event{Level::kInfo, "resumed", "", {}});
  EXPECT_THAT(names, ElementsAre("scaled"));
  // Post hands the closure to the loop.
  control_->Post([] {});
  EXPECT_EQ(posted_.size(), 1u);
}

}  // namespace
}  // namespace corral::agent
