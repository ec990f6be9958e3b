// ScalePlan and ScaleTracker on hand-made worker snapshots.
#include "agent/supervisor/scale_progress.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace corral::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Kind = ScaleStep::Kind;

WorkerView View(int slot, pid_t pid, WorkerState state) {
  WorkerView w;
  w.slot = slot;
  w.pid = pid;
  w.state = state;
  return w;
}

std::vector<Kind> Kinds(const std::vector<ScaleStep>& steps) {
  std::vector<Kind> out;
  for (const ScaleStep& s : steps) out.push_back(s.kind);
  return out;
}

TEST(ScaleProgressTest, PlanNamesTheSlotsThatStartAndStop) {
  std::vector<WorkerView> up = {View(0, 100, WorkerState::kReady),
                                View(1, 101, WorkerState::kStarting),
                                View(2, 102, WorkerState::kStarting)};
  ScalePlan plan = PlanScale(1, 3, up);
  EXPECT_THAT(plan.starting, ElementsAre(1, 2));
  EXPECT_THAT(plan.stopping, IsEmpty());
  EXPECT_EQ(plan.Describe(), "1 -> 3 workers: starting 1,2");

  // Down: slot 2 has a process to stop, slot 3 was in backoff (none).
  std::vector<WorkerView> down = {View(0, 100, WorkerState::kReady),
                                  View(1, 101, WorkerState::kReady),
                                  View(2, 102, WorkerState::kStopping)};
  plan = PlanScale(4, 2, down);
  EXPECT_THAT(plan.starting, IsEmpty());
  EXPECT_THAT(plan.stopping, ElementsAre(2));
  EXPECT_EQ(plan.Describe(), "4 -> 2 workers: stopping 2");
}

TEST(ScaleProgressTest, UpFinishesWhenEveryNewSlotIsReady) {
  std::vector<WorkerView> w = {View(0, 100, WorkerState::kReady),
                               View(1, 101, WorkerState::kStarting),
                               View(2, 102, WorkerState::kStarting)};
  ScaleTracker t(PlanScale(1, 3, w), w);
  EXPECT_THAT(t.Update(w, 3, true), IsEmpty());
  w[2].state = WorkerState::kReady;
  std::vector<ScaleStep> steps = t.Update(w, 3, true);
  ASSERT_THAT(Kinds(steps), ElementsAre(Kind::kReady));
  EXPECT_EQ(steps[0].worker, 2);
  EXPECT_EQ(steps[0].pid, 102);
  EXPECT_EQ(steps[0].done, 1);
  EXPECT_EQ(steps[0].total, 2);
  EXPECT_EQ(steps[0].message, "worker 2 READY (pid 102)");
  w[1].state = WorkerState::kReady;
  steps = t.Update(w, 3, true);
  EXPECT_THAT(Kinds(steps), ElementsAre(Kind::kReady, Kind::kFinished));
  EXPECT_EQ(steps[1].message,
            "scale finished: 1 -> 3 workers, 2 started, 0 stopped");
  EXPECT_TRUE(t.done());
  EXPECT_THAT(t.Update(w, 3, true), IsEmpty());
}

TEST(ScaleProgressTest, ANewWorkerThatDiesBeforeReadyCountsAsFailed) {
  std::vector<WorkerView> w = {View(0, 100, WorkerState::kReady),
                               View(1, 101, WorkerState::kStarting)};
  ScaleTracker t(PlanScale(1, 2, w), w);
  w[1] = View(1, 0, WorkerState::kBackoff);
  w[1].last_exit = "exit code 1";
  std::vector<ScaleStep> steps = t.Update(w, 2, true);
  ASSERT_THAT(Kinds(steps), ElementsAre(Kind::kFailed, Kind::kFinished));
  EXPECT_EQ(steps[0].message,
            "worker 1 failed to start (exit code 1); it is restarted with "
            "backoff");
  EXPECT_EQ(steps[1].failed, 1);
  EXPECT_THAT(steps[1].message, HasSubstr("1 failed to start"));
}

TEST(ScaleProgressTest, DownFinishesWhenTheStoppedProcessesExited) {
  std::vector<WorkerView> w = {View(0, 100, WorkerState::kReady),
                               View(1, 101, WorkerState::kStopping)};
  ScaleTracker t(PlanScale(2, 1, w), w);
  EXPECT_THAT(t.Update(w, 1, true), IsEmpty());
  w.pop_back();
  std::vector<ScaleStep> steps = t.Update(w, 1, true);
  ASSERT_THAT(Kinds(steps), ElementsAre(Kind::kStopped, Kind::kFinished));
  EXPECT_EQ(steps[0].message, "worker 1 stopped (pid 101)");
}

TEST(ScaleProgressTest, AnotherScaleOrADrainEndsIt) {
  std::vector<WorkerView> w = {View(0, 100, WorkerState::kReady),
                               View(1, 101, WorkerState::kStarting)};
  ScaleTracker t(PlanScale(1, 2, w), w);
  std::vector<ScaleStep> steps = t.Update(w, 5, true);
  ASSERT_THAT(Kinds(steps), ElementsAre(Kind::kEnded));
  EXPECT_EQ(steps[0].message, "another scale set 5 workers; this one is over");
  ScaleTracker drained(PlanScale(1, 2, w), w);
  steps = drained.Update(w, 2, false);
  ASSERT_THAT(Kinds(steps), ElementsAre(Kind::kEnded));
  EXPECT_THAT(steps[0].message, HasSubstr("drain or shutdown"));
}

TEST(ScaleProgressTest, NothingToDoFinishesAtOnce) {
  std::vector<WorkerView> w = {View(0, 100, WorkerState::kReady)};
  ScaleTracker t(PlanScale(1, 1, w), w);
  EXPECT_THAT(Kinds(t.Update(w, 1, true)), ElementsAre(Kind::kFinished));
}

}  // namespace
}  // namespace corral::agent
