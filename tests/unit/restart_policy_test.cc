// The restart policy (docs/restart-policy.md): crash loops back off, external
// failures (a SIGKILL the agent did not send, a worker that had served) keep
// capacity. On fakes, with time advanced by hand.
#include "agent/supervisor/restart_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>

#include "tests/unit/supervisor_fixture.h"

namespace corral::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;

const auto kNoJitter = [] { return 0.5; };

TEST(FailureClassificationTest, TellsExternalFailuresFromCrashes) {
  const FailurePolicy policy;  // min_uptime 1 s
  FailureFacts f;
  f.app_ever_ready = true;
  f.status = ExitStatus::Signaled(SIGKILL);
  EXPECT_EQ(ClassifyFailure(f, policy), FailureKind::kExternal);  // OOM
  f.signalled_by_agent = true;  // our ready timeout or watchdog
  EXPECT_EQ(ClassifyFailure(f, policy), FailureKind::kCrash);
  f.ready_for = seconds(5);  // but it had served a while
  EXPECT_EQ(ClassifyFailure(f, policy), FailureKind::kExternal);
  f = {};
  f.app_ever_ready = true;
  f.status = ExitStatus::Exited(1);
  EXPECT_EQ(ClassifyFailure(f, policy), FailureKind::kCrash);  // never READY
  f.ready_for = milliseconds(999);
  EXPECT_EQ(ClassifyFailure(f, policy), FailureKind::kCrash);  // soon after
  f.ready_for = seconds(1);
  EXPECT_EQ(ClassifyFailure(f, policy), FailureKind::kExternal);
  f.status = ExitStatus::Signaled(SIGSEGV);
  EXPECT_EQ(ClassifyFailure(f, policy), FailureKind::kExternal);
  // An app never READY that is SIGKILLed at every start backs off.
  f = {};
  f.status = ExitStatus::Signaled(SIGKILL);
  EXPECT_EQ(ClassifyFailure(f, policy), FailureKind::kCrash);
}

TEST(DecideRestartTest, ExternalFailuresRestartAtOnceThenBackOff) {
  const BackoffOptions b{milliseconds(100), seconds(30), 0.2};
  const FailurePolicy p;  // 3 quick restarts
  std::vector<Duration> delays;
  for (int n = 1; n <= 7; ++n) {
    delays.push_back(
        DecideRestart({FailureKind::kExternal, n, 4, 0}, b, p, kNoJitter)
            .delay);
  }
  EXPECT_THAT(delays, ElementsAre(seconds(0), seconds(0), seconds(0),
                                  milliseconds(100), milliseconds(200),
                                  milliseconds(400), milliseconds(800)));
  // A crash backs off from its second failure.
  EXPECT_EQ(
      DecideRestart({FailureKind::kCrash, 2, 4, 0}, b, p, kNoJitter).delay,
      milliseconds(100));
}

TEST(DecideRestartTest, CapacityGuardCutsLongBackoffOfExternalFailuresOnly) {
  const BackoffOptions b{milliseconds(100), seconds(30), 0.2};
  const FailurePolicy p;  // at most half the slots over backoff.min
  EXPECT_EQ(MaxSlotsInLongBackoff(1, p), 0);
  EXPECT_EQ(MaxSlotsInLongBackoff(2, p), 1);
  EXPECT_EQ(MaxSlotsInLongBackoff(3, p), 1);
  EXPECT_EQ(MaxSlotsInLongBackoff(4, p), 2);
  FailurePolicy all = p;
  all.max_backoff_share = 1.0;
  EXPECT_EQ(MaxSlotsInLongBackoff(4, all), 3);  // never every slot
  // 4 slots, 10th failure in a row (6.4 s): one other slot out is fine.
  RestartDecision d =
      DecideRestart({FailureKind::kExternal, 10, 4, 1}, b, p, kNoJitter);
  EXPECT_EQ(d.delay, milliseconds(6400));
  EXPECT_FALSE(d.capacity_kept);
  // Two others out already: this one stays in service.
  d = DecideRestart({FailureKind::kExternal, 10, 4, 2}, b, p, kNoJitter);
  EXPECT_EQ(d.delay, milliseconds(100));
  EXPECT_TRUE(d.capacity_kept);
  // A crash loop is not guarded: every slot may back off.
  d = DecideRestart({FailureKind::kCrash, 10, 4, 3}, b, p, kNoJitter);
  EXPECT_EQ(d.delay, milliseconds(25600));
  EXPECT_FALSE(d.capacity_kept);
}

class SupervisorRestartPolicyTest : public SupervisorTest {
 protected:
  // SIGKILL from outside (the OOM killer, kill -9) for every live worker.
  int KillAllFromOutside() {
    int n = 0;
    for (const WorkerView& w : sup_->Workers()) {
      if (w.pid != 0) {
        Exit(w.pid, ExitStatus::Signaled(SIGKILL));
        ++n;
      }
    }
    return n;
  }
  double MaxDelayMs(std::string_view cause) const {
    double max = 0;
    for (const Event& e : sink_.events) {
      if (e.name != "worker_restart_scheduled") continue;
      if (std::get<std::string>(*e.Find("cause")) != cause) continue;
      max = std::max(max, std::get<double>(*e.Find("delay_ms")));
    }
    return max;
  }
};

// The storm: every worker SIGKILLed again and again. Before the
// policy every slot was scheduled 14-15 s out and nothing served.
TEST_F(SupervisorRestartPolicyTest, KillStormAcrossAllSlotsKeepsCapacity) {
  config_.backoff = {milliseconds(100), seconds(30), 0.2};
  Start(4);
  ReadyAll();
  int min_running = 4;
  for (int round = 0; round < 200; ++round) {  // 30 s of storm
    ASSERT_GT(KillAllFromOutside(), 0) << "round " << round;
    AdvanceTo(milliseconds(100));  // backoff.min: guarded slots are back
    min_running = std::min(min_running, Running());
    ASSERT_GE(Running(), 2) << "round " << round;
    ReadyAll();
    AdvanceTo(milliseconds(50));
  }
  EXPECT_EQ(min_running, 2);                 // half the slots did back off...
  EXPECT_GE(MaxDelayMs("external"), 10000);  // ...and for long
  EXPECT_GT(sink_.Count("worker_restart_scheduled"), 400);
  EXPECT_EQ(sink_.Count("gave_up"), 0);
  // The storm ends: every slot comes back within the longest backoff.
  AdvanceTo(seconds(31));
  EXPECT_EQ(Running(), 4);
}

// A single worker killed from outside is never left in long backoff.
TEST_F(SupervisorRestartPolicyTest, OneSlotKilledFromOutsideComesBackSoon) {
  Start(1);
  ReadyAll();
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(KillAllFromOutside(), 1);
    EXPECT_LE(NextIn(), milliseconds(100)) << "kill " << i;
    AdvanceTo(NextIn());
    ASSERT_EQ(Running(), 1);
    ReadyAll();
  }
  EXPECT_TRUE(sink_.Last("worker_restart_scheduled")->Find("capacity_kept"));
}

// The app's own crash loop (exits before READY) still backs off on every
// slot, like CrashLoopBackOff: the guard is for external failures only.
TEST_F(SupervisorRestartPolicyTest, TrueCrashLoopStillBacksOffEverySlot) {
  config_.backoff = {milliseconds(100), seconds(30), 0.2};
  Start(4);
  ReadyAll();  // it once worked (so no give-up): a bad deploy of config
  KillAllFromOutside();
  for (int round = 0; round < 12; ++round) {
    // Every new process crashes before READY.
    for (const WorkerView& w : sup_->Workers()) {
      if (w.pid != 0) Exit(w.pid, ExitStatus::Exited(1));
    }
    AdvanceTo(NextIn());
  }
  for (const WorkerView& w : sup_->Workers()) {
    if (w.pid != 0) Exit(w.pid, ExitStatus::Exited(1));
  }
  EXPECT_EQ(Running(), 0);           // every slot waits...
  EXPECT_GE(NextIn(), seconds(20));  // ...long
  const Event* last = sink_.Last("worker_restart_scheduled");
  EXPECT_EQ(std::get<std::string>(*last->Find("cause")), "crash");
  EXPECT_EQ(last->Find("capacity_kept"), nullptr);
}

// Crashing soon after READY, again and again, is a crash loop too.
TEST_F(SupervisorRestartPolicyTest, CrashSoonAfterReadyBacksOff) {
  config_.backoff = {milliseconds(100), seconds(30), 0.2};
  Start(2);
  std::vector<double> delays;
  for (int i = 0; i < 6; ++i) {
    pid_t pid = PidOf(0);
    Ready(pid);
    AdvanceTo(milliseconds(500));
    Exit(pid, ExitStatus::Signaled(SIGSEGV));
    delays.push_back(std::get<double>(
        *sink_.Last("worker_restart_scheduled")->Find("delay_ms")));
    AdvanceTo(NextIn());
  }
  EXPECT_THAT(delays, ElementsAre(0, 100, 200, 400, 800, 1600));
}

// A worker that served for a while and then died restarts at once the first
// few times, whatever killed it.
TEST_F(SupervisorRestartPolicyTest, WorkerThatHadServedRestartsAtOnce) {
  config_.stable_period = seconds(60);
  Start(2);
  std::vector<double> delays;
  for (int i = 0; i < 4; ++i) {
    pid_t pid = PidOf(0);
    Ready(pid);
    AdvanceTo(seconds(2));
    Exit(pid, ExitStatus::Exited(3));
    const Event* e = sink_.Last("worker_restart_scheduled");
    EXPECT_EQ(std::get<std::string>(*e->Find("cause")), "external");
    delays.push_back(std::get<double>(*e->Find("delay_ms")));
    AdvanceTo(NextIn());
  }
  EXPECT_THAT(delays, ElementsAre(0, 0, 0, 100));
}

// With no worker ever READY, an outside SIGKILL at every start looks like
// a crash: the agent still gives up.
TEST_F(SupervisorRestartPolicyTest, NeverReadyKilledAtEveryStartGivesUp) {
  config_.give_up_failures = 5;
  Start(2);
  for (int i = 0; i < 100 && !sup_->done(); ++i) {
    KillAllFromOutside();
    if (!sup_->done()) AdvanceTo(NextIn());
  }
  EXPECT_TRUE(sup_->done());
  EXPECT_EQ(sink_.Count("gave_up"), 1);
}

}  // namespace
}  // namespace corral::agent
