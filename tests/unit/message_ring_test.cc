// MessageRing: the shared, byte-bounded ring every following stream reads
// from (agent/rpc/message_ring.h).
#include "agent/rpc/message_ring.h"

#include <gtest/gtest.h>

#include <string>

namespace corral::agent {
namespace {

using Ring = MessageRing<std::string>;

std::shared_ptr<const std::string> Msg(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

TEST(MessageRingTest, ReadsInOrderUntilCaughtUp) {
  Ring ring(100);
  const uint64_t first = ring.end_seq();
  EXPECT_EQ(ring.Append(Msg("a"), 10), first);
  EXPECT_EQ(ring.Append(Msg("b"), 10), first + 1);
  auto a = ring.Read(first);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a->item, "a");
  EXPECT_EQ(a->skipped, 0u);
  auto b = ring.Read(a->seq + 1);
  ASSERT_TRUE(b);
  EXPECT_EQ(*b->item, "b");
  EXPECT_FALSE(ring.Read(b->seq + 1)) << "caught up";
  EXPECT_EQ(ring.bytes(), 20u);
}

TEST(MessageRingTest, TheBudgetEvictsTheOldest) {
  Ring ring(100);
  for (int i = 0; i < 25; ++i) ring.Append(Msg(std::to_string(i)), 10);
  EXPECT_EQ(ring.size(), 10u);
  EXPECT_EQ(ring.bytes(), 100u);
  EXPECT_EQ(ring.evicted(), 15u);
  EXPECT_EQ(*ring.Read(ring.begin_seq())->item, "15");
}

TEST(MessageRingTest, AStreamThatFellBehindSkipsToTheOldestAndIsToldHowMany) {
  Ring ring(30);
  const uint64_t cursor = ring.end_seq();  // a stream that never read
  for (int i = 0; i < 10; ++i) ring.Append(Msg(std::to_string(i)), 10);
  auto e = ring.Read(cursor);
  ASSERT_TRUE(e);
  EXPECT_EQ(*e->item, "7");
  EXPECT_EQ(e->skipped, 7u);
  EXPECT_EQ(e->seq, cursor + 7);
}

TEST(MessageRingTest, AMessageOverTheBudgetStaysAlone) {
  Ring ring(30);
  ring.Append(Msg("small"), 10);
  ring.Append(Msg("huge"), 1000);
  EXPECT_EQ(ring.size(), 1u);
  EXPECT_EQ(*ring.Read(ring.begin_seq())->item, "huge");
  ring.Append(Msg("next"), 10);
  EXPECT_EQ(ring.size(), 1u) << "the huge one goes as soon as one follows";
  EXPECT_EQ(ring.bytes(), 10u);
}

TEST(MessageRingTest, TailCursorCountsOnlyMatchingMessages) {
  Ring ring(1000);
  for (int i = 0; i < 10; ++i) {
    ring.Append(Msg((i % 2 ? "odd " : "even ") + std::to_string(i)), 10);
  }
  auto odd = [](const std::string& s) { return s.starts_with("odd"); };
  auto any = [](const std::string&) { return true; };
  uint64_t c = ring.TailCursor(2, odd);
  EXPECT_EQ(*ring.Read(c)->item, "odd 7");
  EXPECT_EQ(*ring.Read(ring.TailCursor(3, any))->item, "odd 7") << "7 8 9";
  EXPECT_EQ(ring.TailCursor(0, any), ring.end_seq());
  EXPECT_EQ(ring.TailCursor(100, odd), ring.begin_seq())
      << "asking more than is kept starts at the oldest";
}

TEST(MessageRingTest, EmptyRingHasNothingToRead) {
  Ring ring(10);
  EXPECT_FALSE(ring.Read(ring.end_seq()));
  EXPECT_FALSE(ring.Read(0).has_value());
  EXPECT_EQ(ring.TailCursor(5, [](const std::string&) { return true; }),
            ring.end_seq());
}

}  // namespace
}  // namespace corral::agent
