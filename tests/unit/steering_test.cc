// The pure steering part of --balance: the BPF program (length, and what it
// returns, run by RunSteeringProgram on made-up packets), the group's index
// order, which slots get connections and which sockets may close; and the
// supervisor holding a scaled-away READY worker until its queue is empty.
#include "agent/supervisor/steering.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

#include "agent/supervisor/supervisor.h"
#include "tests/unit/supervisor_fakes.h"

namespace corral::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// An IPv4 header (20 bytes) and a TCP source port after it.
std::vector<uint8_t> Ipv4Syn(uint32_t src, uint16_t sport) {
  std::vector<uint8_t> p(40, 0);
  p[0] = 0x45;
  for (int i = 0; i < 4; ++i) p[12 + i] = (src >> (24 - 8 * i)) & 0xff;
  p[20] = sport >> 8;
  p[21] = sport & 0xff;
  return p;
}

std::vector<uint8_t> Ipv6Syn(uint8_t last_src_byte, uint16_t sport) {
  std::vector<uint8_t> p(60, 0);
  p[0] = 0x60;
  p[8 + 15] = last_src_byte;
  p[40] = sport >> 8;
  p[41] = sport & 0xff;
  return p;
}

WorkerView View(int slot, WorkerState state, pid_t pid = 100) {
  WorkerView w;
  w.slot = slot;
  w.state = state;
  w.pid = pid;
  return w;
}

TEST(BalanceMode, NamesRoundTripAndBadValuesAreRejected) {
  for (BalanceMode m :
       {BalanceMode::kShared, BalanceMode::kReuseport, BalanceMode::kSourceIp,
        BalanceMode::kRoundRobin, BalanceMode::kAuto}) {
    EXPECT_EQ(ParseBalanceMode(BalanceModeName(m)), m);
  }
  EXPECT_EQ(ParseBalanceMode("round-robin"), BalanceMode::kRoundRobin);
  EXPECT_EQ(ParseBalanceMode("roundrobin"), std::nullopt);
  EXPECT_EQ(ParseBalanceMode(""), std::nullopt);
}

TEST(SteeringProgram, OneTargetIsOneReturn) {
  std::vector<BpfInsn> p =
      BuildSteeringProgram(BalanceMode::kReuseport, false, {3});
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(RunSteeringProgram(p, Ipv4Syn(0x7f000001, 40000)), 3u);
}

TEST(SteeringProgram, LengthIsHashPlusJumpTable) {
  // reuseport: load + 4 arithmetic + 2 per target but the last + 1.
  EXPECT_EQ(BuildSteeringProgram(BalanceMode::kReuseport, false, {0, 1}).size(),
            5u + 3u);
  EXPECT_EQ(
      BuildSteeringProgram(BalanceMode::kReuseport, true, {0, 1, 2, 3}).size(),
      5u + 7u);
  // source-ip v6 folds 4 words: 1 + 3 * 3 loads/xors.
  EXPECT_EQ(BuildSteeringProgram(BalanceMode::kSourceIp, true, {0, 1}).size(),
            10u + 4u + 3u);
}

TEST(SteeringProgram, ReturnsOnlyTargetsAndSpreadsPortsEvenly) {
  // Targets 4, 1 and 2 (group indexes, e.g. slots 0, 2, 3 after a leave).
  const std::vector<uint32_t> targets = {4, 1, 2};
  for (bool v6 : {false, true}) {
    std::vector<BpfInsn> p =
        BuildSteeringProgram(BalanceMode::kReuseport, v6, targets);
    std::map<uint32_t, int> hits;
    // Ports as connect() picks them here: increasing by small even steps.
    uint16_t port = 32768;
    for (int i = 0; i < 3000; ++i, port += 2 + 2 * (i % 7)) {
      std::optional<uint32_t> r =
          RunSteeringProgram(p, v6 ? Ipv6Syn(1, port) : Ipv4Syn(1, port));
      ASSERT_TRUE(r.has_value());
      ++hits[*r];
    }
    ASSERT_EQ(hits.size(), 3u);
    for (uint32_t t : targets) {
      EXPECT_GT(hits[t], 900) << "target " << t << " v6 " << v6;
      EXPECT_LT(hits[t], 1100) << "target " << t << " v6 " << v6;
    }
  }
}

TEST(SteeringProgram, SourceIpIgnoresThePortAndSpreadsAddresses) {
  std::vector<BpfInsn> p =
      BuildSteeringProgram(BalanceMode::kSourceIp, false, {0, 1});
  std::set<uint32_t> seen;
  for (uint32_t addr = 0x7f000002; addr < 0x7f000002 + 64; ++addr) {
    std::optional<uint32_t> first = RunSteeringProgram(p, Ipv4Syn(addr, 1000));
    ASSERT_TRUE(first.has_value());
    for (uint16_t port : {40000, 40002, 51234}) {
      EXPECT_EQ(RunSteeringProgram(p, Ipv4Syn(addr, port)), first);
    }
    seen.insert(*first);
  }
  EXPECT_EQ(seen.size(), 2u);
  std::vector<BpfInsn> p6 =
      BuildSteeringProgram(BalanceMode::kSourceIp, true, {0, 1});
  std::set<uint32_t> seen6;
  for (int b = 1; b < 32; ++b) {
    std::optional<uint32_t> r = RunSteeringProgram(p6, Ipv6Syn(b, 1));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(RunSteeringProgram(p6, Ipv6Syn(b, 9999)), r);
    seen6.insert(*r);
  }
  EXPECT_EQ(seen6.size(), 2u);
}

TEST(SteeringProgram, AShortPacketFailsTheLoad) {
  std::vector<BpfInsn> p =
      BuildSteeringProgram(BalanceMode::kReuseport, false, {0, 1});
  EXPECT_EQ(RunSteeringProgram(p, std::vector<uint8_t>(20, 0)), std::nullopt);
}

TEST(ReuseportGroupMap, ClosingOneMovesTheLastIntoItsPlace) {
  ReuseportGroupMap g;
  for (int slot : {0, 1, 2, 3}) g.Join(slot);
  g.Join(2);  // already in: no change
  EXPECT_THAT(g.order(), ElementsAre(0, 1, 2, 3));
  g.Leave(1);
  EXPECT_THAT(g.order(), ElementsAre(0, 3, 2));
  EXPECT_EQ(g.IndexOf(3), 1u);
  EXPECT_EQ(g.IndexOf(1), std::nullopt);
  g.Leave(2);  // the last: nothing moves
  EXPECT_THAT(g.order(), ElementsAre(0, 3));
  g.Join(1);
  EXPECT_EQ(g.IndexOf(1), 2u);
}

TEST(SteeringTargets, OnlyReadySlotsBelowTargetInSlotOrder) {
  ReuseportGroupMap g;
  for (int slot : {0, 1, 2, 3}) g.Join(slot);
  g.Leave(0);  // order: 3 1 2
  g.Join(0);   // order: 3 1 2 0
  std::vector<WorkerView> w = {
      View(0, WorkerState::kReady), View(1, WorkerState::kStarting),
      View(2, WorkerState::kReady), View(3, WorkerState::kReady)};
  SteeringTargets t = ChooseSteeringTargets(g, w, 4);
  EXPECT_TRUE(t.ready);
  EXPECT_THAT(t.indexes, ElementsAre(3u, 2u, 0u));  // slots 0, 2, 3
  // Scaled to 3: slot 3 gets nothing more, though still READY.
  EXPECT_THAT(ChooseSteeringTargets(g, w, 3).indexes, ElementsAre(3u, 2u));
  // A slot whose old process stops while its replacement is READY stays.
  w.push_back(View(2, WorkerState::kStopping, 200));
  EXPECT_THAT(ChooseSteeringTargets(g, w, 3).indexes, ElementsAre(3u, 2u));
}

TEST(SteeringTargets, NoneReadyMeansEverySlotBelowTarget) {
  ReuseportGroupMap g;
  for (int slot : {0, 1, 2}) g.Join(slot);
  std::vector<WorkerView> w = {View(0, WorkerState::kBackoff, 0),
                               View(1, WorkerState::kStarting),
                               View(2, WorkerState::kStopping)};
  SteeringTargets t = ChooseSteeringTargets(g, w, 2);
  EXPECT_FALSE(t.ready);
  EXPECT_THAT(t.indexes, ElementsAre(0u, 1u));
}

TEST(ClosableSlots, ScaledAwayGoneAndDrainedOnly) {
  ReuseportGroupMap g;
  for (int slot : {0, 1, 2, 3}) g.Join(slot);
  std::vector<WorkerView> w = {View(0, WorkerState::kReady),
                               View(1, WorkerState::kReady),
                               View(2, WorkerState::kStopping)};
  std::map<int, int> queue = {{2, 0}, {3, 5}};
  auto len = [&queue](int slot) { return queue[slot]; };
  // Slot 2 still has its process; slot 3's queue is not empty.
  EXPECT_THAT(ClosableSlots(g, w, 2, false, len), IsEmpty());
  // With tcp_migrate_req the queue moves to another member on close.
  EXPECT_THAT(ClosableSlots(g, w, 2, true, len), ElementsAre(3));
  queue[3] = 0;
  EXPECT_THAT(ClosableSlots(g, w, 2, false, len), ElementsAre(3));
  w.pop_back();
  EXPECT_THAT(ClosableSlots(g, w, 2, false, len), ElementsAre(2, 3));
  // Below target: never closed, even with no process (a crash restart).
  EXPECT_THAT(ClosableSlots(g, {}, 4, false, len), IsEmpty());
}

// The supervisor side of a scale-down with per-slot queues.
class ScaleDrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SupervisorConfig config;
    config.workers = 3;
    sup_ = std::make_unique<Supervisor>(config, &clock_, &procs_, &sink_,
                                        [] { return 0.5; });
    sup_->SetScaleDrain([this](int slot) { return queue_[slot] == 0; },
                        std::chrono::seconds(2));
    sup_->Start();
    for (const WorkerView& w : sup_->Workers()) {
      NotifyMessage m;
      m.ready = true;
      sup_->OnNotify(w.pid, m);
    }
  }
  FakeClock clock_;
  FakeProcesses procs_;
  RecordingSink sink_;
  std::unique_ptr<Supervisor> sup_;
  std::map<int, int> queue_;
};

TEST_F(ScaleDrainTest, SigtermWaitsForTheQueueToEmpty) {
  queue_[2] = 3;
  ASSERT_TRUE(sup_->Scale(2).ok());
  EXPECT_TRUE(procs_.GroupSignals(102).empty());
  ASSERT_TRUE(sup_->NextDeadline().has_value());
  EXPECT_LE(*sup_->NextDeadline() - clock_.Now(), Supervisor::kScaleDrainPoll);
  clock_.Advance(Supervisor::kScaleDrainPoll);
  sup_->Tick();
  EXPECT_TRUE(procs_.GroupSignals(102).empty());
  queue_[2] = 0;
  clock_.Advance(Supervisor::kScaleDrainPoll);
  sup_->Tick();
  EXPECT_THAT(procs_.GroupSignals(102), ElementsAre(SIGTERM));
  EXPECT_TRUE(procs_.GroupSignals(100).empty());
  EXPECT_TRUE(procs_.GroupSignals(101).empty());
}

TEST_F(ScaleDrainTest, ABusyQueueGetsSigtermAtTheBound) {
  queue_[2] = 3;
  ASSERT_TRUE(sup_->Scale(2).ok());
  clock_.Advance(std::chrono::milliseconds(1990));
  sup_->Tick();
  EXPECT_TRUE(procs_.GroupSignals(102).empty());
  clock_.Advance(std::chrono::milliseconds(10));
  sup_->Tick();
  EXPECT_THAT(procs_.GroupSignals(102), ElementsAre(SIGTERM));
}

TEST_F(ScaleDrainTest, ScaledBackUpWhileWaitingKeepsTheWorker) {
  queue_[2] = 3;
  ASSERT_TRUE(sup_->Scale(2).ok());
  ASSERT_TRUE(sup_->Scale(3).ok());
  clock_.Advance(std::chrono::seconds(5));
  sup_->Tick();
  EXPECT_TRUE(procs_.GroupSignals(102).empty());
  EXPECT_EQ(procs_.spawns.size(), 3u);
}

TEST_F(ScaleDrainTest, ShutdownStopsAWaitingWorkerAtOnce) {
  queue_[2] = 3;
  ASSERT_TRUE(sup_->Scale(2).ok());
  sup_->Shutdown(SIGTERM);
  clock_.Advance(std::chrono::seconds(6));  // past the drain delay
  sup_->Tick();
  EXPECT_THAT(procs_.GroupSignals(102), ElementsAre(SIGTERM));
}

}  // namespace
}  // namespace corral::agent
