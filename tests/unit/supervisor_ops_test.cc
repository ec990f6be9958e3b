// The supervisor's safe-operations behaviour on fakes, time advanced by
// hand: the configured stop signal, slots a drain stopped, and READY
// workers that take no connection.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>

#include "agent/supervisor/supervisor.h"
#include "tests/unit/supervisor_fixture.h"

namespace corral::agent {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;

TEST_F(SupervisorTest, StopSignalIsUsedForEveryGracefulStop) {
  config_.stop_signal = SIGINT;
  config_.drain_delay = seconds(0);
  config_.stop_timeout = seconds(20);
  Start(2);
  ReadyAll();
  // Reload: the old worker gets SIGINT once its replacement is READY.
  ASSERT_TRUE(sup_->Reload().ok());
  Ready(102);
  EXPECT_THAT(procs_.GroupSignals(100), ElementsAre(SIGINT));
  EXPECT_EQ(
      std::get<std::string>(*sink_.Last("worker_stopping")->Find("signal")),
      "SIGINT");
  Exit(100, ExitStatus::Exited(0));
  Ready(103);  // slot 1's replacement: 101 gets SIGINT
  EXPECT_THAT(procs_.GroupSignals(101), ElementsAre(SIGINT));
  Exit(101, ExitStatus::Exited(0));
  // Scale down: SIGINT too.
  ASSERT_TRUE(sup_->Scale(1).ok());
  EXPECT_THAT(procs_.GroupSignals(103), ElementsAre(SIGINT));
  // Shutdown: SIGINT to workers and strays, SIGKILL after the stop timeout.
  sup_->Shutdown(SIGTERM);
  EXPECT_THAT(procs_.GroupSignals(102), ElementsAre(SIGINT));
  EXPECT_THAT(procs_.stray_signals, ElementsAre(SIGINT));
  AdvanceTo(seconds(20));
  EXPECT_THAT(procs_.GroupSignals(102), ElementsAre(SIGINT, SIGKILL));
}

TEST_F(SupervisorTest, DrainedSlotsAreStoppedNotBackoff) {
  config_.drain_delay = seconds(0);
  Start(2);
  ReadyAll();
  ASSERT_TRUE(sup_->Drain().ok());
  Exit(100, ExitStatus::Exited(0));
  Exit(101, ExitStatus::Exited(0));
  std::vector<WorkerView> w = sup_->Workers();
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].state, WorkerState::kStopped);
  EXPECT_EQ(w[1].state, WorkerState::kStopped);
  EXPECT_STREQ(WorkerStateName(w[0].state), "STOPPED");
  // Resume brings them back.
  ASSERT_TRUE(sup_->Resume().ok());
  for (const WorkerView& v : sup_->Workers()) {
    EXPECT_EQ(v.state, WorkerState::kStarting);
  }
}

TEST_F(SupervisorTest, CrashedSlotIsStillBackoffWhileRunning) {
  Start(1);
  ReadyAll();
  Exit(100, ExitStatus::Exited(3));
  ASSERT_EQ(sup_->Workers().size(), 1u);
  // The first restart is at once: spawned in the next tick; before it, the
  // slot waits in BACKOFF (not STOPPED: nothing drained it).
  EXPECT_EQ(sup_->Workers()[0].state, WorkerState::kBackoff);
}

TEST_F(SupervisorTest, NotAcceptingWorkersDoNotCountAsReady) {
  Start(2);
  ReadyAll();
  EXPECT_EQ(sup_->ReadyCount(), 2);
  sup_->SetNotAccepting({101});
  EXPECT_EQ(sup_->ReadyCount(), 1);
  EXPECT_TRUE(sup_->Ready(1));
  EXPECT_FALSE(sup_->Ready(2));
  for (const WorkerView& v : sup_->Workers()) {
    EXPECT_EQ(v.accepting, v.pid != 101) << v.pid;
    EXPECT_EQ(v.state, WorkerState::kReady);
  }
  sup_->SetNotAccepting({100, 101});
  EXPECT_FALSE(sup_->Ready(1));
  sup_->SetNotAccepting({});
  EXPECT_EQ(sup_->ReadyCount(), 2);
}

TEST_F(SupervisorTest, DrainedRollRefusalSaysResume) {
  config_.drain_delay = seconds(0);
  Start(1);
  ReadyAll();
  ASSERT_TRUE(sup_->Drain().ok());
  absl::Status s = sup_->Replace(0, "restart");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()),
              ::testing::HasSubstr("`corralctl resume` brings them back"));
}

}  // namespace
}  // namespace corral::agent
