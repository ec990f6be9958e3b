// Usage samples and the memory-replacement policy (MemoryGuard) on fakes: a
// real Supervisor on FakeProcesses, readings made up by hand, time advanced
// by hand.
#include "agent/supervisor/memory_guard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "tests/unit/supervisor_fakes.h"

namespace corral::agent {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMi = int64_t{1} << 20;
constexpr int64_t kBound = 64 * kMi;

int64_t IntField(const Event& e, std::string_view key) {
  const FieldValue* v = e.Find(key);
  return v == nullptr ? -1 : std::get<int64_t>(*v);
}

class MemoryGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SupervisorConfig config;
    config.workers = 2;
    sup_ = std::make_unique<Supervisor>(config, &clock_, &procs_, &sink_,
                                        [] { return 0.5; });
    sup_->Start();
    ReadyAll();
  }
  void ReadyAll() { MarkStartingReady(*sup_); }
  pid_t PidOf(int slot) const {
    for (const WorkerView& w : sup_->Workers()) {
      if (w.slot == slot && w.pid != 0 && w.state != WorkerState::kStopping) {
        return w.pid;
      }
    }
    return 0;
  }
  // One sampling second: every current process at `rss`, except the ones
  // named in `over` (at 2x the bound).
  void Sample(std::vector<pid_t> over, std::optional<int64_t> bound = kBound) {
    clock_.Advance(std::chrono::seconds(1));
    std::vector<UsageReading> readings;
    for (const WorkerView& w : sup_->Workers()) {
      if (w.pid == 0) continue;
      const bool big = std::find(over.begin(), over.end(), w.pid) != over.end();
      readings.push_back({w.pid, 1.0, big ? 2 * kBound : kBound / 2});
    }
    guard_.Sample(clock_.Now(), readings, bound, *sup_);
  }
  size_t Spawns() const { return procs_.spawns.size(); }

  FakeClock clock_;
  FakeProcesses procs_;
  RecordingSink sink_;
  std::unique_ptr<Supervisor> sup_;
  MemoryGuard guard_{&sink_};
};

TEST_F(MemoryGuardTest, CpuPercentComesFromTwoSamplesOverTheTimeBetween) {
  const pid_t pid = PidOf(0);
  guard_.Sample(clock_.Now(), {{pid, 10.0, 5 * kMi}}, std::nullopt, *sup_);
  ASSERT_TRUE(guard_.Usage(pid).has_value());
  EXPECT_EQ(guard_.Usage(pid)->cpu_percent, 0);  // no earlier sample
  clock_.Advance(std::chrono::seconds(2));
  guard_.Sample(clock_.Now(), {{pid, 11.0, 6 * kMi}}, std::nullopt, *sup_);
  EXPECT_DOUBLE_EQ(guard_.Usage(pid)->cpu_percent, 50.0);
  EXPECT_DOUBLE_EQ(guard_.Usage(pid)->cpu_seconds, 11.0);
  EXPECT_EQ(guard_.Usage(pid)->rss_bytes, 6 * kMi);
  // A process not read this round is forgotten.
  EXPECT_FALSE(guard_.Usage(PidOf(1)).has_value());
}

TEST_F(MemoryGuardTest, AWorkerOverTheBoundForTwoSamplesIsReplaced) {
  const pid_t leaky = PidOf(1);
  const size_t before = Spawns();
  Sample({leaky});
  EXPECT_EQ(sink_.Count("memory_replace"), 0);
  EXPECT_EQ(Spawns(), before);
  Sample({leaky});
  ASSERT_EQ(sink_.Count("memory_replace"), 1);
  const Event* e = sink_.Last("memory_replace");
  EXPECT_EQ(IntField(*e, "worker"), 1);
  EXPECT_EQ(IntField(*e, "pid"), leaky);
  EXPECT_EQ(IntField(*e, "rss_bytes"), 2 * kBound);
  EXPECT_EQ(IntField(*e, "bound_bytes"), kBound);
  EXPECT_THAT(e->msg, HasSubstr("over --max-worker-memory 64Mi"));
  // A graceful replacement: a candidate for slot 1, the old one untouched
  // until it is READY.
  ASSERT_EQ(Spawns(), before + 1);
  EXPECT_EQ(procs_.spawns.back().slot, 1);
  EXPECT_TRUE(procs_.GroupSignals(leaky).empty());
  EXPECT_EQ(guard_.replacements(), 1u);
  ReadyAll();
  EXPECT_THAT(procs_.GroupSignals(leaky), ::testing::ElementsAre(SIGTERM));
  EXPECT_EQ(
      std::get<std::string>(*sink_.Last("reload_slot_done")->Find("reason")),
      "memory");
}

TEST_F(MemoryGuardTest, ASampleUnderTheBoundStartsTheCountAgain) {
  const pid_t leaky = PidOf(0);
  Sample({leaky});
  Sample({});
  Sample({leaky});
  EXPECT_EQ(sink_.Count("memory_replace"), 0);
  Sample({leaky});
  EXPECT_EQ(sink_.Count("memory_replace"), 1);
}

TEST_F(MemoryGuardTest, OnlyReadyWorkersAreReplaced) {
  // Slot 0 restarts: its new process is STARTING.
  const pid_t old = PidOf(0);
  procs_.alive.erase(old);
  sup_->OnExit(old, ExitStatus::Exited(1));
  const pid_t starting = PidOf(0);
  ASSERT_NE(starting, old);
  for (int i = 0; i < 4; ++i) Sample({starting});
  EXPECT_EQ(sink_.Count("memory_replace"), 0);
}

TEST_F(MemoryGuardTest, RefusedDuringARollReportedOnceAndRetried) {
  // Slot 0 is being rolled (its candidate is starting): no second roll.
  ASSERT_TRUE(sup_->Replace(0, "restart").ok());
  const pid_t leaky = PidOf(1);
  const size_t before = Spawns();
  Sample({leaky});
  Sample({leaky});
  EXPECT_EQ(sink_.Count("memory_replace"), 1);
  ASSERT_EQ(sink_.Count("memory_replace_refused"), 1);
  EXPECT_THAT(sink_.Last("memory_replace_refused")->msg,
              HasSubstr("already in progress"));
  EXPECT_EQ(IntField(*sink_.Last("memory_replace_refused"), "worker"), 1);
  Sample({leaky});
  Sample({leaky});
  EXPECT_EQ(sink_.Count("memory_replace"), 1);  // reported once
  EXPECT_EQ(sink_.Count("memory_replace_refused"), 1);
  EXPECT_EQ(Spawns(), before);
  EXPECT_EQ(guard_.replacements(), 0u);
  // The roll ends; the next sample retries and is accepted.
  ReadyAll();
  EXPECT_FALSE(sup_->reloading());
  Sample({leaky});
  EXPECT_EQ(guard_.replacements(), 1u);
  ASSERT_EQ(Spawns(), before + 1);
  EXPECT_EQ(procs_.spawns.back().slot, 1);
  EXPECT_EQ(sink_.Count("memory_replace"), 1);
}

TEST_F(MemoryGuardTest, ABoundThatDisappearsStopsTheCount) {
  const pid_t leaky = PidOf(0);
  Sample({leaky});
  Sample({leaky}, std::nullopt);  // the memory limit went away
  Sample({leaky});                // and came back: one sample over, not two
  EXPECT_EQ(sink_.Count("memory_replace"), 0);
  Sample({leaky});
  EXPECT_EQ(sink_.Count("memory_replace"), 1);
}

}  // namespace
}  // namespace corral::agent
