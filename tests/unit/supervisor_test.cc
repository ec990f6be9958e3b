// The supervisor's decisions on fakes, with time advanced by hand: a 30 s
// backoff is tested in microseconds, without sleeping.
#include "agent/supervisor/supervisor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>

#include "tests/unit/supervisor_fixture.h"

namespace corral::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;

TEST_F(SupervisorTest, StartsOneProcessPerSlotWithGenerationOne) {
  Start(3);
  ASSERT_EQ(procs_.spawns.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(procs_.spawns[i].slot, i);
    EXPECT_EQ(procs_.spawns[i].generation, 1);
  }
  EXPECT_EQ(sup_->ReadyCount(), 0);
  EXPECT_FALSE(sup_->Ready());
  ReadyAll();
  EXPECT_EQ(sup_->ReadyCount(), 3);
  EXPECT_TRUE(sup_->Ready(3));
}

TEST_F(SupervisorTest, ReadyDelayModeMarksReadyAfterTheDelay) {
  config_.ready_delay = milliseconds(200);
  Start(1);
  EXPECT_EQ(NextIn(), milliseconds(200));
  AdvanceTo(milliseconds(199));
  EXPECT_EQ(sup_->ReadyCount(), 0);
  AdvanceTo(milliseconds(1));
  EXPECT_EQ(sup_->ReadyCount(), 1);
}

TEST_F(SupervisorTest, FirstRestartAtOnceThenExponentialBackoffCapped) {
  config_.backoff = {milliseconds(100), seconds(1), 0.2};
  Start(1);
  ReadyAll();  // ever ready: the agent never gives up
  std::vector<double> delays;
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(Exit(PidOf(0), ExitStatus::Exited(1)));
    const Event* e = sink_.Last("worker_restart_scheduled");
    ASSERT_NE(e, nullptr);
    delays.push_back(std::get<double>(*e->Find("delay_ms")));
    AdvanceTo(NextIn());
    ASSERT_NE(PidOf(0), 0) << "restart " << i;
  }
  EXPECT_THAT(delays, ElementsAre(0, 100, 200, 400, 800, 1000, 1000));
  EXPECT_EQ(procs_.spawns.back().generation, 8);
}

TEST_F(SupervisorTest, JitterStaysWithinTwentyPercent) {
  BackoffOptions b{milliseconds(100), seconds(30), 0.2};
  EXPECT_EQ(RestartDelay(3, b, [] { return 0.0; }), milliseconds(160));
  EXPECT_EQ(RestartDelay(3, b, [] { return 0.5; }), milliseconds(200));
  EXPECT_LE(RestartDelay(3, b, [] { return 0.9999; }), milliseconds(240));
  EXPECT_EQ(RestartDelay(80, b, [] { return 0.99; }), seconds(30));
}

TEST_F(SupervisorTest, BackoffResetsAfterAStablePeriodReady) {
  config_.stable_period = seconds(10);
  Start(1);
  ReadyAll();
  for (int i = 0; i < 3; ++i) {
    Exit(PidOf(0), ExitStatus::Exited(1));
    AdvanceTo(NextIn());
    Ready(PidOf(0));
  }
  // Now READY for longer than the stable period: the next crash restarts
  // at once again.
  AdvanceTo(seconds(11));
  Exit(PidOf(0), ExitStatus::Exited(1));
  EXPECT_EQ(std::get<double>(
                *sink_.Last("worker_restart_scheduled")->Find("delay_ms")),
            0);
}

TEST_F(SupervisorTest, NotReadyWithinTimeoutIsKilledAndCountsAsFailure) {
  config_.ready_timeout = seconds(5);
  Start(1);
  pid_t pid = PidOf(0);
  AdvanceTo(seconds(4));
  EXPECT_TRUE(procs_.GroupSignals(pid).empty());
  AdvanceTo(seconds(1));
  EXPECT_THAT(procs_.GroupSignals(pid), ElementsAre(SIGKILL));
  EXPECT_EQ(std::get<std::string>(*sink_.Last("worker_killed")->Find("reason")),
            "ready_timeout");
  Exit(pid, ExitStatus::Signaled(SIGKILL));
  EXPECT_NE(sink_.Last("worker_restart_scheduled"), nullptr);
  EXPECT_NE(PidOf(0), pid);  // restarted at once (first failure)
}

TEST_F(SupervisorTest, SilentWorkerGetsAbortThenKill) {
  config_.watchdog = seconds(2);
  config_.abort_grace = seconds(1);
  Start(1);
  pid_t pid = PidOf(0);
  Ready(pid);
  NotifyMessage ping;
  ping.watchdog = true;
  AdvanceTo(milliseconds(1500));
  sup_->OnNotify(pid, ping);
  AdvanceTo(milliseconds(1500));  // 1.5 s since the ping: fine
  EXPECT_TRUE(procs_.signals.empty());
  AdvanceTo(milliseconds(500));  // 2 s silent
  ASSERT_EQ(procs_.signals.size(), 1u);
  EXPECT_EQ(procs_.signals[0].target, pid);
  EXPECT_EQ(procs_.signals[0].sig, SIGABRT);
  EXPECT_EQ(sink_.Count("worker_killed"), 1);
  EXPECT_EQ(std::get<std::string>(*sink_.Last("worker_killed")->Find("reason")),
            "watchdog");
  AdvanceTo(seconds(1));
  EXPECT_THAT(procs_.GroupSignals(pid), ElementsAre(SIGKILL));
  EXPECT_EQ(sink_.Count("worker_killed"), 1);
  Exit(pid, ExitStatus::Signaled(SIGKILL));
  EXPECT_THAT(sink_.Last("worker_exited")->msg,
              ::testing::HasSubstr("(watchdog)"));
  EXPECT_NE(sink_.Last("worker_restart_scheduled"), nullptr);
}

TEST_F(SupervisorTest, ReloadRollsSlotBySlotGatedOnReady) {
  Start(2);
  ReadyAll();
  pid_t old0 = PidOf(0), old1 = PidOf(1);
  ASSERT_TRUE(sup_->Reload().ok());
  ASSERT_EQ(procs_.spawns.size(), 3u);
  EXPECT_EQ(procs_.spawns[2].slot, 0);
  EXPECT_EQ(procs_.spawns[2].generation, 2);
  pid_t new0 = 102;
  // Until the replacement is READY the old one is untouched and no other
  // slot is rolled.
  AdvanceTo(seconds(3));
  EXPECT_TRUE(procs_.GroupSignals(old0).empty());
  EXPECT_EQ(procs_.spawns.size(), 3u);
  Ready(new0);
  EXPECT_THAT(procs_.GroupSignals(old0), ElementsAre(SIGTERM));
  ASSERT_EQ(procs_.spawns.size(), 4u);
  EXPECT_EQ(procs_.spawns[3].slot, 1);
  EXPECT_TRUE(procs_.GroupSignals(old1).empty());
  Ready(103);
  EXPECT_THAT(procs_.GroupSignals(old1), ElementsAre(SIGTERM));
  EXPECT_EQ(sink_.Count("reload_slot_done"), 2);
  EXPECT_EQ(sink_.Count("reload_finished"), 1);
  // The old processes' exits are expected: no restart.
  Exit(old0, ExitStatus::Exited(0));
  Exit(old1, ExitStatus::Exited(0));
  EXPECT_EQ(sink_.Count("worker_restart_scheduled"), 0);
  EXPECT_EQ(sup_->ReadyCount(), 2);
  EXPECT_EQ(PidOf(0), new0);
}

TEST_F(SupervisorTest, ReloadAbortsWhenReplacementFailsAndOldKeepsServing) {
  Start(2);
  ReadyAll();
  pid_t old0 = PidOf(0);
  ASSERT_TRUE(sup_->Reload().ok());
  pid_t candidate = 102;
  Exit(candidate, ExitStatus::Exited(1));
  EXPECT_EQ(sink_.Count("reload_aborted"), 1);
  EXPECT_EQ(sink_.Count("reload_finished"), 0);
  EXPECT_TRUE(procs_.GroupSignals(old0).empty());
  EXPECT_EQ(PidOf(0), old0);
  EXPECT_EQ(procs_.spawns.size(), 3u);  // slot 1 was never touched
  EXPECT_EQ(sup_->ReadyCount(), 2);
  EXPECT_FALSE(sup_->reloading());
  EXPECT_TRUE(sup_->Reload().ok());  // a new reload may start
}

TEST_F(SupervisorTest, ReloadAbortsOnReadyTimeout) {
  config_.ready_timeout = seconds(5);
  Start(1);
  ReadyAll();
  pid_t old0 = PidOf(0);
  ASSERT_TRUE(sup_->Reload().ok());
  const pid_t candidate = 101;
  AdvanceTo(seconds(5));
  EXPECT_THAT(procs_.GroupSignals(candidate), ElementsAre(SIGKILL));
  Exit(candidate, ExitStatus::Signaled(SIGKILL));
  EXPECT_EQ(sink_.Count("reload_aborted"), 1);
  EXPECT_EQ(PidOf(0), old0);
  EXPECT_TRUE(procs_.GroupSignals(old0).empty());
}

TEST_F(SupervisorTest, ReloadRefusedWhileDrainingOrReloading) {
  Start(1);
  ReadyAll();
  ASSERT_TRUE(sup_->Reload().ok());
  EXPECT_EQ(sup_->Reload().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(sup_->Drain().ok());
  EXPECT_EQ(sup_->Reload().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SupervisorTest, ShutdownDrainsThenTermsThenExitsZero) {
  config_.drain_delay = seconds(5);
  config_.stop_timeout = seconds(20);
  Start(2);
  ReadyAll();
  EXPECT_FALSE(sup_->stopping_for_good());
  sup_->Shutdown(SIGTERM);
  EXPECT_FALSE(sup_->Ready());  // readiness flips first
  EXPECT_TRUE(procs_.signals.empty());
  // Workers still accept during the delay: the agent keeps its sockets.
  EXPECT_FALSE(sup_->stopping_for_good());
  EXPECT_EQ(NextIn(), seconds(5));
  AdvanceTo(seconds(5));
  EXPECT_TRUE(sup_->stopping_for_good());
  EXPECT_THAT(procs_.GroupSignals(100), ElementsAre(SIGTERM));
  EXPECT_THAT(procs_.GroupSignals(101), ElementsAre(SIGTERM));
  EXPECT_THAT(procs_.stray_signals, ElementsAre(SIGTERM));
  Exit(100, ExitStatus::Exited(0));
  EXPECT_FALSE(sup_->done());
  Exit(101, ExitStatus::Exited(0));
  EXPECT_TRUE(sup_->done());
  EXPECT_EQ(sup_->exit_code(), 0);
  EXPECT_EQ(sink_.Count("worker_restart_scheduled"), 0);
}

// A drain (the agent stays up) may be resumed: its sockets must stay. A
// shutdown after it is for good at once.
TEST_F(SupervisorTest, StoppingForGoodOnlyWhenShuttingDown) {
  config_.drain_delay = seconds(0);
  Start(1);
  ReadyAll();
  ASSERT_TRUE(sup_->Drain().ok());
  EXPECT_THAT(procs_.GroupSignals(100), ElementsAre(SIGTERM));
  EXPECT_FALSE(sup_->stopping_for_good());
  sup_->Shutdown(SIGTERM);
  EXPECT_TRUE(sup_->stopping_for_good());
}

TEST_F(SupervisorTest, ShutdownKillsAfterStopTimeoutAndExitsOne) {
  config_.drain_delay = seconds(0);
  config_.stop_timeout = seconds(3);
  Start(1);
  ReadyAll();
  sup_->Shutdown(SIGTERM);
  EXPECT_THAT(procs_.GroupSignals(100), ElementsAre(SIGTERM));
  AdvanceTo(seconds(3));
  EXPECT_THAT(procs_.GroupSignals(100), ElementsAre(SIGTERM, SIGKILL));
  Exit(100, ExitStatus::Signaled(SIGKILL));
  EXPECT_TRUE(sup_->done());
  EXPECT_EQ(sup_->exit_code(), 1);
}

TEST_F(SupervisorTest, SecondSignalCutsTheDrainShort) {
  config_.drain_delay = seconds(5);
  config_.stop_timeout = seconds(20);
  Start(1);
  ReadyAll();
  sup_->Shutdown(SIGTERM);
  sup_->Shutdown(SIGINT);  // skip the drain delay
  EXPECT_THAT(procs_.GroupSignals(100), ElementsAre(SIGTERM));
  sup_->Shutdown(SIGINT);  // skip the stop timeout
  EXPECT_THAT(procs_.GroupSignals(100), ElementsAre(SIGTERM, SIGKILL));
}

// `corralctl stop --now`: what agent_service did (Shutdown twice) counted
// as a second SIGTERM and cut to SIGKILL when the drain delay was 0 or over.
TEST_F(SupervisorTest, TwoShutdownCallsWithNoDrainDelayKillAtOnce) {
  config_.drain_delay = seconds(0);
  Start(1);
  ReadyAll();
  sup_->Shutdown(SIGTERM);
  sup_->Shutdown(SIGTERM);
  EXPECT_THAT(procs_.GroupSignals(100), ElementsAre(SIGTERM, SIGKILL));
}

TEST_F(SupervisorTest, SkipDrainDelayTermsNowAndKeepsTheStopTimeout) {
  config_.drain_delay = seconds(5);
  config_.stop_timeout = seconds(10);
  Start(2);
  ReadyAll();
  EXPECT_FALSE(sup_->SkipDrainDelay());  // nothing to skip while running
  sup_->Shutdown(SIGTERM);
  EXPECT_TRUE(procs_.signals.empty());
  EXPECT_TRUE(sup_->SkipDrainDelay());
  EXPECT_EQ(sink_.Count("drain_delay_skipped"), 1);
  EXPECT_THAT(procs_.GroupSignals(100), ElementsAre(SIGTERM));
  EXPECT_THAT(procs_.GroupSignals(101), ElementsAre(SIGTERM));
  // Asking again (a retried RPC) changes nothing: no SIGKILL.
  EXPECT_FALSE(sup_->SkipDrainDelay());
  EXPECT_THAT(procs_.GroupSignals(100), ElementsAre(SIGTERM));
  EXPECT_EQ(NextIn(), seconds(10));
  AdvanceTo(seconds(9));
  EXPECT_THAT(procs_.GroupSignals(100), ElementsAre(SIGTERM));
  Exit(100, ExitStatus::Exited(0));  // an in-flight request finished
  AdvanceTo(seconds(1));
  EXPECT_THAT(procs_.GroupSignals(101), ElementsAre(SIGTERM, SIGKILL));
  Exit(101, ExitStatus::Signaled(SIGKILL));
  EXPECT_TRUE(sup_->done());
  EXPECT_EQ(sup_->exit_code(), 1);
}

TEST_F(SupervisorTest, SkipDrainDelayWithNoDrainDelayIsANoOp) {
  config_.drain_delay = seconds(0);
  config_.stop_timeout = seconds(10);
  Start(1);
  ReadyAll();
  sup_->Shutdown(SIGTERM);
  EXPECT_FALSE(sup_->SkipDrainDelay());
  EXPECT_THAT(procs_.GroupSignals(100), ElementsAre(SIGTERM));
  Exit(100, ExitStatus::Exited(0));
  EXPECT_TRUE(sup_->done());
  EXPECT_EQ(sup_->exit_code(), 0);
}

TEST_F(SupervisorTest, SkipDrainDelayAlsoShortensADrain) {
  config_.drain_delay = seconds(5);
  Start(1);
  ReadyAll();
  ASSERT_TRUE(sup_->Drain().ok());
  EXPECT_TRUE(sup_->SkipDrainDelay());
  EXPECT_THAT(procs_.GroupSignals(100), ElementsAre(SIGTERM));
  Exit(100, ExitStatus::Exited(0));
  EXPECT_EQ(sink_.Count("drain_finished"), 1);
  EXPECT_FALSE(sup_->done());
}

TEST_F(SupervisorTest, ShutdownWaitsForAdoptedDescendants) {
  config_.drain_delay = seconds(0);
  config_.stop_timeout = seconds(10);
  Start(1);
  ReadyAll();
  procs_.strays = 2;  // orphans still running
  sup_->Shutdown(SIGTERM);
  Exit(100, ExitStatus::Exited(0));
  EXPECT_FALSE(sup_->done());
  // An orphan exits; one remains until the stop timeout's SIGKILL.
  procs_.strays = 1;
  EXPECT_FALSE(Exit(555, ExitStatus::Exited(0)));
  EXPECT_FALSE(sup_->done());
  AdvanceTo(seconds(10));
  EXPECT_THAT(procs_.stray_signals, ElementsAre(SIGTERM, SIGKILL));
  EXPECT_FALSE(Exit(556, ExitStatus::Signaled(SIGKILL)));
  EXPECT_TRUE(sup_->done());
  EXPECT_EQ(sup_->exit_code(), 1);
}

TEST_F(SupervisorTest, GivesUpWhenNoWorkerEverBecomesReady) {
  config_.give_up_failures = 5;
  Start(2);
  int exits = 0;
  while (!sup_->done() && exits < 100) {
    for (const WorkerView& w : sup_->Workers()) {
      if (w.pid != 0) {
        Exit(w.pid, ExitStatus::Exited(1));
        ++exits;
      }
    }
    if (!sup_->done()) AdvanceTo(NextIn());
  }
  EXPECT_TRUE(sup_->done());
  EXPECT_EQ(sup_->exit_code(), 1);
  EXPECT_EQ(exits, 10);  // 5 per slot, then no more spawns
  const Event* e = sink_.Last("gave_up");
  ASSERT_NE(e, nullptr);
  EXPECT_THAT(e->msg, ::testing::HasSubstr("exit code 1"));
}

TEST_F(SupervisorTest, ExecFailuresBackOffAndGiveUp) {
  procs_.fail_spawns = 1000;
  Start(1);
  int ticks = 0;
  while (!sup_->done() && ticks++ < 100) AdvanceTo(NextIn());
  EXPECT_TRUE(sup_->done());
  EXPECT_EQ(sup_->exit_code(), 1);
  EXPECT_EQ(procs_.spawns.size(), 5u);
  EXPECT_EQ(sink_.Count("exec_failed"), 5);
}

TEST_F(SupervisorTest, NoGiveUpOnceAWorkerWasReady) {
  Start(1);
  ReadyAll();
  for (int i = 0; i < 20; ++i) {
    Exit(PidOf(0), ExitStatus::Exited(1));
    AdvanceTo(NextIn());
  }
  EXPECT_FALSE(sup_->done());
  EXPECT_EQ(sink_.Count("gave_up"), 0);
}

TEST_F(SupervisorTest, UnknownPidsAreOrphansNotWorkers) {
  Start(1);
  EXPECT_FALSE(Exit(4242, ExitStatus::Exited(3)));
  EXPECT_EQ(sink_.Count("worker_exited"), 0);
  EXPECT_EQ(procs_.spawns.size(), 1u);
}

TEST_F(SupervisorTest, WorkerThatSaidStoppingIsRestartedAtOnceWithoutFailure) {
  Start(1);
  ReadyAll();
  for (int i = 0; i < 10; ++i) {
    pid_t pid = PidOf(0);
    NotifyMessage m;
    m.stopping = true;
    sup_->OnNotify(pid, m);
    EXPECT_EQ(sup_->ReadyCount(), 0);
    Exit(pid, ExitStatus::Exited(0));
    EXPECT_EQ(std::get<double>(
                  *sink_.Last("worker_restart_scheduled")->Find("delay_ms")),
              0);
    AdvanceTo(Duration::zero());
    Ready(PidOf(0));
  }
}

TEST_F(SupervisorTest, ForwardsSignalsToEveryWorkerGroup) {
  Start(3);
  EXPECT_EQ(sup_->ForwardSignal(SIGUSR1), 3);
  for (pid_t pid : {100, 101, 102}) {
    EXPECT_THAT(procs_.GroupSignals(pid), ElementsAre(SIGUSR1));
  }
}

TEST_F(SupervisorTest, ScaleUpForksAndScaleDownStopsHighestSlotsGracefully) {
  Start(2);
  ReadyAll();
  ASSERT_TRUE(sup_->Scale(4).ok());
  EXPECT_EQ(procs_.spawns.size(), 4u);
  EXPECT_EQ(procs_.spawns[3].slot, 3);
  ReadyAll();
  ASSERT_TRUE(sup_->Scale(1).ok());
  EXPECT_TRUE(procs_.GroupSignals(100).empty());
  for (pid_t pid : {101, 102, 103}) {
    EXPECT_THAT(procs_.GroupSignals(pid), ElementsAre(SIGTERM));
    Exit(pid, ExitStatus::Exited(0));
  }
  EXPECT_EQ(sink_.Count("worker_restart_scheduled"), 0);
  EXPECT_EQ(sup_->Workers().size(), 1u);
  EXPECT_EQ(sup_->Scale(0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sup_->Scale(-1).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SupervisorTest, ScaleDownDuringAReplacementAbortsItAndFreesTheRoll) {
  Start(2);
  ReadyAll();
  ASSERT_TRUE(sup_->Replace(1, "memory").ok());
  const pid_t candidate = 102;
  ASSERT_TRUE(sup_->Scale(1).ok());
  EXPECT_EQ(sink_.Count("reload_aborted"), 1);
  EXPECT_THAT(procs_.GroupSignals(candidate), ElementsAre(SIGTERM));
  EXPECT_THAT(procs_.GroupSignals(101), ElementsAre(SIGTERM));
  Exit(candidate, ExitStatus::Exited(0));
  Exit(101, ExitStatus::Exited(0));
  EXPECT_FALSE(sup_->reloading());
  ASSERT_TRUE(sup_->Scale(2).ok());
  EXPECT_EQ(procs_.spawns.back().slot, 1);
  EXPECT_EQ(procs_.spawns.back().generation, 3);  // generations go on
  ReadyAll();
  EXPECT_TRUE(sup_->Replace(1, "memory").ok());
}

TEST_F(SupervisorTest, DrainStopsWorkersAndStaysUpUntilResume) {
  config_.drain_delay = seconds(2);
  Start(2);
  ReadyAll();
  ASSERT_TRUE(sup_->Drain().ok());
  EXPECT_FALSE(sup_->Ready());
  AdvanceTo(seconds(2));
  Exit(100, ExitStatus::Exited(0));
  Exit(101, ExitStatus::Exited(0));
  EXPECT_FALSE(sup_->done());
  EXPECT_EQ(sink_.Count("drain_finished"), 1);
  EXPECT_EQ(sink_.Count("worker_restart_scheduled"), 0);
  ASSERT_TRUE(sup_->Resume().ok());
  EXPECT_EQ(procs_.spawns.size(), 4u);
  ReadyAll();
  EXPECT_TRUE(sup_->Ready(2));
}

TEST_F(SupervisorTest, ExtendTimeoutPostponesTheReadyDeadline) {
  config_.ready_timeout = seconds(5);
  Start(1);
  AdvanceTo(seconds(4));
  NotifyMessage m;
  m.extend_timeout = seconds(10);
  sup_->OnNotify(100, m);
  AdvanceTo(seconds(5));
  EXPECT_TRUE(procs_.signals.empty());
  AdvanceTo(seconds(5));
  EXPECT_THAT(procs_.GroupSignals(100), ElementsAre(SIGKILL));
}

TEST_F(SupervisorTest, HugeExtendTimeoutIsClampedNotWrapped) {
  // A message built elsewhere may carry any Duration: now + max once
  // overflowed (UB; in practice a deadline in the past, so ignored).
  config_.ready_timeout = seconds(5);
  Start(1);
  NotifyMessage m;
  m.extend_timeout = Duration::max();
  sup_->OnNotify(100, m);
  AdvanceTo(seconds(6));
  EXPECT_TRUE(procs_.signals.empty());
  // Clamped to the 24 h limit, not forever.
  EXPECT_EQ(NextIn(), kMaxExtendTimeout - seconds(6));
  AdvanceTo(NextIn());
  EXPECT_THAT(procs_.GroupSignals(100), ElementsAre(SIGKILL));
}

// A hung worker the watchdog kills while the shutdown waits out its drain
// delay was killed by the agent: the exit status says so, as for a worker
// past --stop-timeout.
TEST_F(SupervisorTest, WatchdogKillDuringTheDrainDelayExitsOne) {
  config_.watchdog = seconds(2);
  config_.abort_grace = seconds(1);
  config_.drain_delay = seconds(10);
  Start(1);
  pid_t pid = PidOf(0);
  Ready(pid);
  sup_->Shutdown(SIGTERM);
  AdvanceTo(seconds(2));  // silent: SIGABRT
  AdvanceTo(seconds(1));  // still there: SIGKILL
  EXPECT_THAT(procs_.GroupSignals(pid), ElementsAre(SIGKILL));
  EXPECT_EQ(sink_.Count("worker_escalated"), 1);
  Exit(pid, ExitStatus::Signaled(SIGKILL));
  ASSERT_TRUE(sup_->done());
  EXPECT_EQ(sup_->exit_code(), 1);
  EXPECT_EQ(std::get<bool>(*sink_.Last("shutdown_finished")->Find("killed")),
            true);
}

TEST_F(SupervisorTest, WorkerAbortedByTheWatchdogDuringShutdownExitsOne) {
  config_.watchdog = seconds(2);
  config_.drain_delay = seconds(10);
  Start(1);
  pid_t pid = PidOf(0);
  Ready(pid);
  sup_->Shutdown(SIGTERM);
  AdvanceTo(seconds(2));
  Exit(pid, ExitStatus::Signaled(SIGABRT));  // died of the SIGABRT itself
  ASSERT_TRUE(sup_->done());
  EXPECT_EQ(sup_->exit_code(), 1);
}

}  // namespace
}  // namespace corral::agent
