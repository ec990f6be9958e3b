// The pure part of --balance=round-robin: the eBPF program, run by
// RunRoundRobinProgram with a counter and a select stand-in (the kernel
// runs the same instructions in reuseport_ebpf_test), and the slot table.
#include "agent/supervisor/round_robin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace corral::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr int kCounterMap = 7;
constexpr int kSocketsMap = 8;

// Runs the program `n` times; the slots selected, in order (-1: none).
std::vector<int> Picks(const std::vector<int>& table, int n,
                       uint64_t* counter) {
  const std::vector<EbpfInsn> p =
      BuildRoundRobinProgram(kCounterMap, kSocketsMap, table);
  std::vector<int> out;
  for (int i = 0; i < n; ++i) {
    std::optional<RoundRobinRun> run = RunRoundRobinProgram(
        p, kCounterMap, counter, [](int map, uint32_t) -> int64_t {
          return map == kSocketsMap ? 0 : -22;
        });
    if (!run) {
      ADD_FAILURE() << "the program did not run to its exit";
      return out;
    }
    EXPECT_EQ(run->verdict, ebpf::kSkPass);
    out.push_back(run->selected ? static_cast<int>(*run->selected) : -1);
  }
  return out;
}

TEST(RoundRobinProgram, TakesTheTableInTurn) {
  uint64_t counter = 0;
  EXPECT_THAT(Picks({0, 2, 5}, 7, &counter), ElementsAre(0, 2, 5, 0, 2, 5, 0));
  EXPECT_EQ(counter, 7u);
}

TEST(RoundRobinProgram, TheTurnCarriesOverANewTable) {
  // The counter map outlives programs: a new table starts where the count
  // is, not at its first entry every time.
  uint64_t counter = 0;
  EXPECT_THAT(Picks({0, 1}, 3, &counter), ElementsAre(0, 1, 0));
  EXPECT_THAT(Picks({0, 1, 3}, 4, &counter), ElementsAre(0, 1, 3, 0));
}

TEST(RoundRobinProgram, SplitsEvenlyWhateverTheCount) {
  // Even across a counter wrap at 2^64 with k not a power of 2, at most one
  // off.
  for (uint64_t start : {uint64_t{0}, ~uint64_t{0} - 5}) {
    uint64_t counter = start;
    std::map<int, int> per_slot;
    for (int slot : Picks({0, 1, 2}, 30, &counter)) ++per_slot[slot];
    EXPECT_EQ(per_slot.size(), 3u);
    for (const auto& [slot, n] : per_slot) {
      EXPECT_GE(n, 9) << "slot " << slot;
      EXPECT_LE(n, 11) << "slot " << slot;
    }
  }
}

TEST(RoundRobinProgram, OneSlotIsAlwaysThatSlot) {
  uint64_t counter = 41;
  EXPECT_THAT(Picks({3}, 3, &counter), ElementsAre(3, 3, 3));
}

TEST(RoundRobinProgram, AnEmptyTablePassesWithoutASelection) {
  const std::vector<EbpfInsn> p =
      BuildRoundRobinProgram(kCounterMap, kSocketsMap, {});
  EXPECT_EQ(p.size(), 2u);  // r0 = SK_PASS; exit
  uint64_t counter = 0;
  EXPECT_THAT(Picks({}, 2, &counter), ElementsAre(-1, -1));
  EXPECT_EQ(counter, 0u);
}

TEST(RoundRobinProgram, AFailedSelectStillPasses) {
  // The socket at that key closed (-ENOENT): the kernel hashes instead,
  // the SYN is not dropped.
  const std::vector<EbpfInsn> p =
      BuildRoundRobinProgram(kCounterMap, kSocketsMap, {0, 1});
  uint64_t counter = 1;
  std::optional<RoundRobinRun> run = RunRoundRobinProgram(
      p, kCounterMap, &counter, [](int, uint32_t) -> int64_t { return -2; });
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(*run, (RoundRobinRun{ebpf::kSkPass, std::nullopt}));
  EXPECT_EQ(counter, 2u);
}

TEST(RoundRobinProgram, NoCounterStillPasses) {
  const std::vector<EbpfInsn> p =
      BuildRoundRobinProgram(kCounterMap, kSocketsMap, {0, 1});
  bool selected = false;
  std::optional<RoundRobinRun> run =
      RunRoundRobinProgram(p, kCounterMap, nullptr, [&](int, uint32_t) {
        selected = true;
        return int64_t{0};
      });
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(*run, (RoundRobinRun{ebpf::kSkPass, std::nullopt}));
  EXPECT_FALSE(selected);
}

TEST(RoundRobinProgram, LengthIsFixedPartPlusThreePerSlotButTheLast) {
  // 11 before the table (the map load is 2), 3 per table entry but the
  // last, 1 for the last, 7 for the select and 2 for "return SK_PASS".
  for (size_t k : {1u, 2u, 64u}) {
    std::vector<int> table(k);
    for (size_t i = 0; i < k; ++i) table[i] = static_cast<int>(i);
    EXPECT_EQ(BuildRoundRobinProgram(kCounterMap, kSocketsMap, table).size(),
              11u + 3u * (k - 1) + 1u + 7u + 2u)
        << k << " slots";
  }
}

TEST(RoundRobinProgram, MapsAreLoadedByFd) {
  const std::vector<EbpfInsn> p =
      BuildRoundRobinProgram(kCounterMap, kSocketsMap, {0});
  std::vector<int32_t> map_fds;
  for (const EbpfInsn& in : p) {
    if (in.code == ebpf::kLdImm64 && in.src == ebpf::kPseudoMapFd) {
      map_fds.push_back(in.imm);
    }
  }
  EXPECT_THAT(map_fds, ElementsAre(kCounterMap, kSocketsMap));
}

TEST(RoundRobinTable, SteeringTargetsBackToSlotsInSlotOrder) {
  ReuseportGroupMap group;
  for (int slot : {0, 1, 2, 3}) group.Join(slot);
  group.Leave(1);  // slot 3 moves to index 1: order 0, 3, 2
  std::vector<WorkerView> workers;
  for (int slot : {0, 2, 3}) {
    WorkerView w;
    w.slot = slot;
    w.state = WorkerState::kReady;
    w.pid = 100 + slot;
    workers.push_back(w);
  }
  SteeringTargets targets = ChooseSteeringTargets(group, workers, 4);
  EXPECT_THAT(RoundRobinTable(group, targets), ElementsAre(0, 2, 3));
  EXPECT_THAT(RoundRobinTable(group, SteeringTargets{}), IsEmpty());
}

}  // namespace
}  // namespace corral::agent
