// RejectionCoalescer: at most one log line per notify sender per second,
// with time advanced by hand.
#include "agent/supervisor/rejection_coalescer.h"

#include <gtest/gtest.h>

namespace corral::agent {
namespace {

using std::chrono::milliseconds;

class RejectionCoalescerTest : public ::testing::Test {
 protected:
  TimePoint At(int ms) { return TimePoint{} + milliseconds(ms); }
  RejectionCoalescer coalescer_{std::chrono::seconds(1), /*max_senders=*/3};
};

TEST_F(RejectionCoalescerTest, TheFirstDatagramOfASenderIsReportedAtOnce) {
  auto r = coalescer_.Reject(At(0), 42, "malformed: no '='");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->pid, 42);
  EXPECT_EQ(r->count, 1u);
  EXPECT_EQ(r->reason, "malformed: no '='");
  EXPECT_EQ(r->window, Duration::zero());
}

TEST_F(RejectionCoalescerTest, AFloodIsOneReportPerSecondWithTheFirstReason) {
  ASSERT_TRUE(coalescer_.Reject(At(0), 42, "first"));
  int reports = 0;
  uint64_t counted = 1;
  // 10 000 datagrams over 5 s, and the housekeeping flush once a second.
  for (int i = 1; i <= 10000; ++i) {
    const int ms = i / 2;
    if (auto r = coalescer_.Reject(At(ms), 42, i == 1 ? "second" : "later")) {
      ++reports;
      counted += r->count;
      EXPECT_GE(r->window, std::chrono::seconds(1));
    }
    if (i % 2000 == 0) {
      for (const auto& r : coalescer_.Flush(At(ms))) {
        ++reports;
        counted += r.count;
      }
    }
  }
  for (const auto& r : coalescer_.Flush(At(6000))) {
    ++reports;
    counted += r.count;
  }
  EXPECT_LE(reports, 6);
  EXPECT_GE(reports, 4);
  EXPECT_EQ(counted, 10001u) << "every datagram is counted in some report";
}

TEST_F(RejectionCoalescerTest, ThePendingReportCarriesItsOwnFirstReason) {
  ASSERT_TRUE(coalescer_.Reject(At(0), 7, "over 4096 bytes"));
  EXPECT_FALSE(coalescer_.Reject(At(100), 7, "EXTEND_TIMEOUT_USEC too big"));
  EXPECT_FALSE(coalescer_.Reject(At(200), 7, "malformed"));
  EXPECT_TRUE(coalescer_.Flush(At(999)).empty()) << "the second is not over";
  std::vector<RejectionCoalescer::Report> r = coalescer_.Flush(At(1000));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].pid, 7);
  EXPECT_EQ(r[0].count, 2u);
  EXPECT_EQ(r[0].reason, "EXTEND_TIMEOUT_USEC too big");
  EXPECT_EQ(r[0].window, milliseconds(1000));
}

TEST_F(RejectionCoalescerTest, AQuietSenderIsForgottenAndReportedAtOnceAgain) {
  ASSERT_TRUE(coalescer_.Reject(At(0), 7, "a"));
  EXPECT_TRUE(coalescer_.Flush(At(1000)).empty());
  EXPECT_EQ(coalescer_.senders(), 0u);
  auto r = coalescer_.Reject(At(1500), 7, "b");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->count, 1u);
  EXPECT_EQ(r->reason, "b");
}

TEST_F(RejectionCoalescerTest, SendersAreCountedApart) {
  EXPECT_TRUE(coalescer_.Reject(At(0), 1, "x"));
  EXPECT_TRUE(coalescer_.Reject(At(0), 2, "y"));
  EXPECT_FALSE(coalescer_.Reject(At(10), 1, "x"));
  EXPECT_FALSE(coalescer_.Reject(At(10), 1, "x"));
  EXPECT_FALSE(coalescer_.Reject(At(10), 2, "y"));
  std::vector<RejectionCoalescer::Report> r = coalescer_.Flush(At(1000));
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].pid, 1);
  EXPECT_EQ(r[0].count, 2u);
  EXPECT_EQ(r[1].pid, 2);
  EXPECT_EQ(r[1].count, 1u);
}

TEST_F(RejectionCoalescerTest, ASwarmOfSendersSharesOneEntry) {
  for (int pid = 1; pid <= 3; ++pid) coalescer_.Reject(At(0), pid, "x");
  auto first_other = coalescer_.Reject(At(0), 100, "from 100");
  ASSERT_TRUE(first_other);
  EXPECT_EQ(first_other->pid, RejectionCoalescer::kOtherSenders);
  for (int pid = 101; pid < 1000; ++pid) {
    EXPECT_FALSE(coalescer_.Reject(At(1), pid, "x"));
  }
  EXPECT_EQ(coalescer_.senders(), 4u);
  uint64_t others = 0;
  for (const auto& r : coalescer_.Flush(At(1000))) {
    if (r.pid == RejectionCoalescer::kOtherSenders) others = r.count;
  }
  EXPECT_EQ(others, 899u);
}

}  // namespace
}  // namespace corral::agent
