// FairLogQueue: a full log queue takes lines from the loudest source first.
#include "agent/supervisor/fair_log_queue.h"

#include <gtest/gtest.h>

#include <string>

namespace corral::agent {
namespace {

std::string Line(char c, size_t n) { return std::string(n - 1, c) + "\n"; }

TEST(FairLogQueueTest, QueuesInOrderWhileThereIsRoom) {
  FairLogQueue q(100);
  EXPECT_TRUE(q.Push(0, "a\n"));
  EXPECT_TRUE(q.Push(1, "b\n"));
  EXPECT_TRUE(q.Push(FairLogQueue::kAgentSource, "c\n"));
  EXPECT_EQ(q.bytes(), 6u);
  EXPECT_EQ(q.PopBatch(1000), "a\nb\nc\n");
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(q.TakeDropped().empty());
}

TEST(FairLogQueueTest, TheLoudSourceLosesItsOwnNewLinesWhenFull) {
  FairLogQueue q(100);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(q.Push(0, Line('x', 10)));
  EXPECT_FALSE(q.Push(0, Line('x', 10)));
  EXPECT_FALSE(q.Push(0, Line('x', 10)));
  EXPECT_EQ(q.TakeDropped(), (std::map<int, uint64_t>{{0, 2}}));
  EXPECT_TRUE(q.TakeDropped().empty()) << "the counts reset";
}

TEST(FairLogQueueTest, AQuietSourceGetsInByDroppingTheLoudestsNewest) {
  FairLogQueue q(100);
  for (int i = 0; i < 10; ++i) q.Push(0, std::to_string(i) + Line('x', 9));
  EXPECT_TRUE(q.Push(1, "quiet\n"));
  EXPECT_EQ(q.bytes_of(1), 6u);
  EXPECT_LE(q.bytes(), 100u);
  EXPECT_EQ(q.TakeDropped(), (std::map<int, uint64_t>{{0, 1}}));
  // Source 0 keeps its oldest lines, continuous; the quiet line comes last.
  const std::string out = q.PopBatch(1000);
  EXPECT_EQ(out.substr(0, 10), "0xxxxxxxx\n");
  EXPECT_EQ(out.substr(out.size() - 6), "quiet\n");
  EXPECT_EQ(out.find("9x"), std::string::npos) << "the newest loud line went";
}

TEST(FairLogQueueTest, AFloodAndATrickleThroughAFullQueue) {
  // The case: slot 0 writes far more than fits, slot 1 a line now
  // and then (well under half the queue); nothing is written out
  // meanwhile. Slot 1 loses nothing.
  FairLogQueue q(4096);
  int quiet_in = 0;
  for (int i = 0; i < 20000; ++i) {
    q.Push(0, Line('l', 200));
    if (i % 400 == 0) {
      quiet_in += q.Push(1, "quiet " + std::to_string(i) + "\n");
    }
  }
  EXPECT_EQ(quiet_in, 50);
  std::map<int, uint64_t> dropped = q.TakeDropped();
  EXPECT_EQ(dropped.count(1), 0u);
  EXPECT_GT(dropped[0], 19000u);
  const std::string out = q.PopBatch(1 << 20);
  size_t quiet_out = 0;
  for (size_t p = out.find("quiet"); p != std::string::npos;
       p = out.find("quiet", p + 1)) {
    ++quiet_out;
  }
  EXPECT_LE(out.size(), 4096u) << "the bound still holds";
  EXPECT_EQ(quiet_out, 50u) << "every quiet line is still queued";
}

TEST(FairLogQueueTest, TwoEqualSourcesDoNotTakeFromEachOther) {
  FairLogQueue q(100);
  for (int i = 0; i < 5; ++i) {
    q.Push(0, Line('a', 10));
    q.Push(1, Line('b', 10));
  }
  // Full with 50/50: a new line of either would make its source the
  // loudest, so it is the one dropped.
  EXPECT_FALSE(q.Push(0, Line('a', 10)));
  EXPECT_FALSE(q.Push(1, Line('b', 10)));
  EXPECT_EQ(q.bytes_of(0), 50u);
  EXPECT_EQ(q.bytes_of(1), 50u);
}

TEST(FairLogQueueTest, ALineOverTheWholeBoundIsDropped) {
  FairLogQueue q(100);
  q.Push(1, "small\n");
  EXPECT_FALSE(q.Push(0, Line('x', 200)));
  EXPECT_EQ(q.bytes_of(1), 6u) << "nothing else was dropped for it";
  EXPECT_EQ(q.TakeDropped(), (std::map<int, uint64_t>{{0, 1}}));
}

TEST(FairLogQueueTest, PopBatchStopsNearItsSizeButTakesAtLeastOneLine) {
  FairLogQueue q(1000);
  q.Push(0, Line('a', 300));
  q.Push(0, Line('b', 300));
  q.Push(0, Line('c', 300));
  EXPECT_EQ(q.PopBatch(100).size(), 300u);
  EXPECT_EQ(q.PopBatch(400).size(), 600u);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
}

}  // namespace
}  // namespace corral::agent
