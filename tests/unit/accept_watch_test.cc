// AcceptWatch on hand-made samples, time advanced by hand.
#include "agent/supervisor/accept_watch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/supervisor_fakes.h"

namespace corral::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

WorkerView Ready(int slot, pid_t pid) {
  WorkerView w;
  w.slot = slot;
  w.pid = pid;
  w.state = WorkerState::kReady;
  return w;
}

ListenerSample Shared(int waiting) {
  return {"tcp://127.0.0.1:8080", 3, std::nullopt, waiting};
}

ListenerSample PerSlot(int slot, int waiting) {
  return {"tcp://127.0.0.1:8080", 3, slot, waiting};
}

class AcceptWatchTest : public ::testing::Test {
 protected:
  // Feeds the same samples every 250 ms for `d`; returns the last verdict.
  std::vector<pid_t> Hold(Duration d, const std::vector<ListenerSample>& s,
                          const std::vector<WorkerView>& w) {
    std::vector<pid_t> out;
    for (Duration t = Duration::zero(); t <= d;
         t += AcceptWatch::kSamplePeriod) {
      out = watch_.Observe(clock_.Now(), s, w);
      clock_.Advance(AcceptWatch::kSamplePeriod);
    }
    return out;
  }

  FakeClock clock_;
  RecordingSink sink_;
  AcceptWatch watch_{seconds(5), &sink_};
};

TEST_F(AcceptWatchTest, SharedSocketWithWaitingConnectionsStallsAfterBound) {
  const std::vector<WorkerView> w = {Ready(0, 100), Ready(1, 101)};
  EXPECT_THAT(Hold(milliseconds(4750), {Shared(3)}, w), IsEmpty());
  EXPECT_EQ(sink_.Count("accept_stalled"), 0);
  EXPECT_THAT(watch_.Observe(clock_.Now(), {Shared(3)}, w),
              ElementsAre(100, 101));
  ASSERT_EQ(sink_.Count("accept_stalled"), 1);
  const Event* e = sink_.Last("accept_stalled");
  EXPECT_EQ(e->level, Level::kWarn);
  EXPECT_THAT(e->msg, HasSubstr("workers 0,1 are READY but none has accepted "
                                "for 5.0s while 3 connection(s) wait on "
                                "tcp://127.0.0.1:8080: does the app listen "
                                "on fd 3 (LISTEN_FDS)?"));
  // Said once, not every sample.
  Hold(seconds(2), {Shared(3)}, w);
  EXPECT_EQ(sink_.Count("accept_stalled"), 1);
}

TEST_F(AcceptWatchTest, GrowingQueueStillStalls) {
  const std::vector<WorkerView> w = {Ready(0, 100)};
  std::vector<pid_t> out;
  for (int i = 0; i <= 20; ++i) {
    out = watch_.Observe(clock_.Now(), {Shared(1 + i)}, w);
    clock_.Advance(AcceptWatch::kSamplePeriod);
  }
  EXPECT_THAT(out, ElementsAre(100));
  EXPECT_THAT(sink_.Last("accept_stalled")->msg,
              HasSubstr("worker 0 (pid 100) is READY but has not accepted"));
}

TEST_F(AcceptWatchTest, AnyShrinkOfTheQueueMeansAccepting) {
  const std::vector<WorkerView> w = {Ready(0, 100)};
  // A busy worker: the queue never empties at a sample, but shrinks now and
  // then.
  for (int i = 0; i < 60; ++i) {
    const int waiting = 5 + (i % 8 == 7 ? -2 : i % 8);
    EXPECT_THAT(watch_.Observe(clock_.Now(), {Shared(waiting)}, w), IsEmpty())
        << i;
    clock_.Advance(AcceptWatch::kSamplePeriod);
  }
  EXPECT_EQ(sink_.Count("accept_stalled"), 0);
}

TEST_F(AcceptWatchTest, EmptyQueueOrNoReadyWorkerNeverStalls) {
  EXPECT_THAT(Hold(seconds(10), {Shared(0)}, {Ready(0, 100)}), IsEmpty());
  WorkerView starting = Ready(0, 100);
  starting.state = WorkerState::kStarting;
  // Connections wait for a worker that is not READY yet: expected.
  EXPECT_THAT(Hold(seconds(10), {Shared(4)}, {starting}), IsEmpty());
  EXPECT_EQ(sink_.Count("accept_stalled"), 0);
}

TEST_F(AcceptWatchTest, ResumesWhenTheQueueShrinks) {
  const std::vector<WorkerView> w = {Ready(0, 100)};
  EXPECT_THAT(Hold(seconds(5), {Shared(2)}, w), ElementsAre(100));
  EXPECT_THAT(watch_.Observe(clock_.Now(), {Shared(1)}, w), IsEmpty());
  ASSERT_EQ(sink_.Count("accept_resumed"), 1);
  EXPECT_EQ(sink_.Last("accept_resumed")->level, Level::kInfo);
  // And a new full window is needed to stall again.
  clock_.Advance(AcceptWatch::kSamplePeriod);
  EXPECT_THAT(Hold(seconds(4), {Shared(1)}, w), IsEmpty());
}

TEST_F(AcceptWatchTest, ANewReadyWorkerGetsAWholeWindow) {
  EXPECT_THAT(Hold(seconds(5), {PerSlot(1, 2)}, {Ready(1, 101)}),
              ElementsAre(101));
  // Slot 1 replaced (a reload): the stall is dropped without a resume.
  EXPECT_THAT(Hold(seconds(4), {PerSlot(1, 2)}, {Ready(1, 102)}), IsEmpty());
  EXPECT_EQ(sink_.Count("accept_resumed"), 0);
  EXPECT_THAT(Hold(seconds(1), {PerSlot(1, 2)}, {Ready(1, 102)}),
              ElementsAre(102));
  EXPECT_EQ(sink_.Count("accept_stalled"), 2);
}

TEST_F(AcceptWatchTest, PerSlotSocketsBlameOnlyTheirOwnWorker) {
  const std::vector<WorkerView> w = {Ready(0, 100), Ready(1, 101)};
  // Slot 0 accepts (its queue is empty at every sample), slot 1 does not.
  EXPECT_THAT(Hold(seconds(6), {PerSlot(0, 0), PerSlot(1, 3)}, w),
              ElementsAre(101));
  const Event* e = sink_.Last("accept_stalled");
  EXPECT_EQ(std::get<std::string>(*e->Find("workers")), "1");
  EXPECT_EQ(std::get<int64_t>(*e->Find("waiting")), 3);
}

}  // namespace
}  // namespace corral::agent
