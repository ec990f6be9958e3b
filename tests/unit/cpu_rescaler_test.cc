// The sizing reads and the CPU auto-rescale policy (CpuRescaler) on fakes: a
// real Supervisor on FakeProcesses, sizing inputs set by hand, one Poll() per
// simulated second. No cgroup, no root, no sleeping.
#include "agent/supervisor/cpu_rescaler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "tests/unit/supervisor_fakes.h"

namespace corral::agent {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kGi = int64_t{1} << 30;

int64_t IntField(const Event& e, std::string_view key) {
  const FieldValue* v = e.Find(key);
  return v == nullptr ? -1 : std::get<int64_t>(*v);
}

std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

class CpuRescalerTest : public ::testing::Test {
 protected:
  // Starts the rescaler (auto unless `fixed`) and a supervisor with the
  // count it decided, every worker READY.
  void Start(std::optional<int> fixed = std::nullopt, SizingPolicy policy = {},
             WorkerMemoryBound bound = {}) {
    rescaler_ =
        std::make_unique<CpuRescaler>(&reader_, policy, bound, fixed, &sink_);
    SupervisorConfig config;
    config.workers = rescaler_->Start(/*fallback=*/3);
    sup_ = std::make_unique<Supervisor>(config, &clock_, &procs_, &sink_,
                                        [] { return 0.5; });
    sup_->Start();
    ReadyAll();
  }
  void ReadyAll() { MarkStartingReady(*sup_); }
  // One housekeeping second.
  void Poll() {
    clock_.Advance(std::chrono::seconds(1));
    sup_->Tick();
    rescaler_->Poll(*sup_);
  }

  FakeClock clock_;
  FakeProcesses procs_;
  RecordingSink sink_;
  FakeCgroupReader reader_;
  std::unique_ptr<CpuRescaler> rescaler_;
  std::unique_ptr<Supervisor> sup_;
};

TEST_F(CpuRescalerTest, StartLogsTheDecisionAndStartsThatMany) {
  reader_.SetCpus(/*affinity=*/4, /*cpus=*/2);
  Start();
  EXPECT_EQ(sup_->target_workers(), 2);
  ASSERT_EQ(sink_.Count("sizing"), 1);
  const Event* sizing = sink_.Last("sizing");
  EXPECT_EQ(IntField(*sizing, "workers"), 2);
  EXPECT_EQ(std::get<std::string>(*sizing->Find("rule")), "cpu quota");
  EXPECT_TRUE(rescaler_->auto_mode());
  EXPECT_EQ(sink_.Count("memory_budget"), 0);  // no bound asked for
}

TEST_F(CpuRescalerTest, UnreadableLimitsWarnAndFallBackToTheAffinityCount) {
  reader_.error = absl::InternalError("cgroup.controllers: garbage");
  Start();
  EXPECT_EQ(sup_->target_workers(), 3);  // the fallback
  ASSERT_EQ(sink_.Count("sizing_failed"), 1);
  EXPECT_THAT(sink_.Last("sizing_failed")->msg, HasSubstr("garbage"));
  EXPECT_FALSE(rescaler_->state().decision.has_value());
  // Scale to auto needs a decision.
  absl::Status s = rescaler_->ScaleTo(*sup_, std::nullopt);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(s), HasSubstr("scale to a number instead"));
}

TEST_F(CpuRescalerTest, ANewCountIsAppliedOnlyAfterTwoReads) {
  reader_.SetCpus(4, 2);
  Start();
  reader_.SetCpus(4, 1);
  Poll();
  EXPECT_EQ(sup_->target_workers(), 2);
  EXPECT_EQ(sink_.Count("rescale"), 0);
  Poll();
  EXPECT_EQ(sup_->target_workers(), 1);
  ASSERT_EQ(sink_.Count("rescale"), 1);
  EXPECT_EQ(IntField(*sink_.Last("rescale"), "from"), 2);
  EXPECT_EQ(IntField(*sink_.Last("rescale"), "to"), 1);
  EXPECT_THAT(sink_.Last("rescale")->msg, HasSubstr("CPU limit changed"));
  // Slot 1 is stopped gracefully.
  EXPECT_EQ(sink_.Count("worker_stopping"), 1);
  Poll();
  EXPECT_EQ(sink_.Count("rescale"), 1);  // steady: nothing more
}

TEST_F(CpuRescalerTest, ACountSeenOnlyOnceIsForgotten) {
  reader_.SetCpus(4, 2);
  Start();
  reader_.SetCpus(4, 1);  // a limit written in two steps...
  Poll();
  reader_.SetCpus(4, 2);  // ...ends where it began: no flapping
  Poll();
  Poll();
  EXPECT_EQ(sink_.Count("rescale"), 0);
  reader_.SetCpus(4, 3);
  Poll();
  reader_.SetCpus(4, 1);  // a different count starts the count again
  Poll();
  EXPECT_EQ(sink_.Count("rescale"), 0);
  Poll();
  EXPECT_EQ(sink_.Count("rescale"), 1);
  EXPECT_EQ(sup_->target_workers(), 1);
}

TEST_F(CpuRescalerTest, NothingIsAppliedWhileDrained) {
  reader_.SetCpus(4, 2);
  Start();
  ASSERT_TRUE(sup_->Drain().ok());
  reader_.SetCpus(4, 1);
  for (int i = 0; i < 4; ++i) Poll();
  EXPECT_EQ(sink_.Count("rescale"), 0);
  EXPECT_EQ(sup_->target_workers(), 2);
  // Resumed: the new count must hold for two reads again.
  ASSERT_TRUE(sup_->Resume().ok());
  Poll();
  EXPECT_EQ(sink_.Count("rescale"), 0);
  Poll();
  EXPECT_EQ(sink_.Count("rescale"), 1);
  EXPECT_EQ(sup_->target_workers(), 1);
}

TEST_F(CpuRescalerTest, AReloadDoesNotHoldARescaleBack) {
  // The supervisor takes a Scale during a roll (a slot scaled away aborts
  // its roll), so the policy does not wait for the reload to end.
  reader_.SetCpus(4, 2);
  Start();
  ASSERT_TRUE(sup_->Reload().ok());
  reader_.SetCpus(4, 3);
  Poll();
  Poll();
  EXPECT_EQ(sink_.Count("rescale"), 1);
  EXPECT_EQ(sup_->target_workers(), 3);
  EXPECT_TRUE(sup_->reloading());
  EXPECT_EQ(sink_.Count("rescale_refused"), 0);
}

TEST_F(CpuRescalerTest, FixedCountDoesNotFollowTheLimitUntilScaledToAuto) {
  reader_.SetCpus(4, 2);
  Start(/*fixed=*/5);
  EXPECT_EQ(sup_->target_workers(), 5);
  EXPECT_FALSE(rescaler_->auto_mode());
  reader_.SetCpus(4, 1);
  for (int i = 0; i < 3; ++i) Poll();
  EXPECT_EQ(sink_.Count("rescale"), 0);
  EXPECT_EQ(sup_->target_workers(), 5);
  // Scale to auto: the current decision at once, then following the limit.
  ASSERT_TRUE(rescaler_->ScaleTo(*sup_, std::nullopt).ok());
  EXPECT_TRUE(rescaler_->auto_mode());
  EXPECT_EQ(sup_->target_workers(), 1);
  reader_.SetCpus(4, 2);
  Poll();
  Poll();
  EXPECT_EQ(sup_->target_workers(), 2);
  // Scale to a number: fixed again.
  ASSERT_TRUE(rescaler_->ScaleTo(*sup_, 4).ok());
  EXPECT_FALSE(rescaler_->auto_mode());
  reader_.SetCpus(4, 1);
  Poll();
  Poll();
  EXPECT_EQ(sup_->target_workers(), 4);
}

TEST_F(CpuRescalerTest, DefaultCeilingIsRelativeToTheUsableCpus) {
  reader_.SetCpus(4, 2);  // 2 usable CPUs
  Start();
  EXPECT_EQ(rescaler_->Ceiling().workers, 8);
  absl::Status s = rescaler_->ScaleTo(*sup_, 1000);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(s),
            "cannot scale to 1000 workers: the default ceiling is 8 (4 per "
            "usable CPU x 2 CPUs, at least 8); --max-workers=N raises it, "
            "--max-workers=none removes it");
  EXPECT_EQ(sup_->target_workers(), 2);  // nothing happened
  EXPECT_TRUE(rescaler_->ScaleTo(*sup_, 8).ok());
  // A resize to 3 CPUs raises it once read.
  reader_.SetCpus(4, 3);
  Poll();
  EXPECT_EQ(rescaler_->Ceiling().workers, 12);
  EXPECT_TRUE(rescaler_->ScaleTo(*sup_, 12).ok());
}

TEST_F(CpuRescalerTest, CeilingNeverRefusesTheStartCount) {
  reader_.SetCpus(2, 0);
  Start(20);
  EXPECT_EQ(rescaler_->Ceiling().workers, 20);
  EXPECT_TRUE(rescaler_->ScaleTo(*sup_, 20).ok());
  EXPECT_FALSE(rescaler_->ScaleTo(*sup_, 21).ok());
}

TEST_F(CpuRescalerTest, ScaleToNamesTheLimitItRefuses) {
  reader_.SetCpus(4, 2);
  SizingPolicy policy;
  policy.max_workers = 6;
  Start(std::nullopt, policy);
  absl::Status s = rescaler_->ScaleTo(*sup_, 7);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(s), "cannot scale to 7 workers: --max-workers is 6");
  policy.max_workers = kMaxWorkersNone;
  Start(std::nullopt, policy);
  s = rescaler_->ScaleTo(*sup_, 5000);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(s), HasSubstr("the limit is 4096"));
  Start();
  // The supervisor's own refusal comes back as it is, mode unchanged.
  ASSERT_TRUE(sup_->Drain().ok());
  s = rescaler_->ScaleTo(*sup_, 3);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(rescaler_->auto_mode());
}

TEST_F(CpuRescalerTest, CpuLimitsAppearingAndDisappearing) {
  reader_.SetCpus(4, 0);  // no quota: the affinity decides
  Start();
  EXPECT_EQ(sup_->target_workers(), 4);
  reader_.SetCpus(4, 2);  // a quota appears (in-place resize)
  Poll();
  // The changed inputs are logged as a new decision at once...
  EXPECT_EQ(sink_.Count("sizing"), 2);
  EXPECT_EQ(IntField(*sink_.Last("sizing"), "workers"), 2);
  Poll();
  // ...and applied on the second read.
  EXPECT_EQ(sup_->target_workers(), 2);
  EXPECT_EQ(sink_.Count("sizing"), 2);  // unchanged inputs: no new line
  reader_.SetCpus(4, 0);                // and goes away
  Poll();
  Poll();
  EXPECT_EQ(sup_->target_workers(), 4);
  EXPECT_EQ(sink_.Count("rescale"), 2);
  EXPECT_EQ(sink_.Count("sizing"), 3);
}

TEST_F(CpuRescalerTest, MemoryLimitsAppearingAndDisappearing) {
  reader_.SetCpus(2, 0);
  Start(std::nullopt, {}, {WorkerMemoryBound::Mode::kAuto, 0});
  ASSERT_TRUE(rescaler_->state().memory.has_value());
  EXPECT_FALSE(rescaler_->state().memory->per_worker_bytes.has_value());
  EXPECT_EQ(sink_.Count("memory_budget"), 0);
  reader_.SetMemory(kGi);
  Poll();
  // (1 GiB - 10% headroom) / 2 workers, rounded down to a MiB.
  ASSERT_TRUE(rescaler_->state().memory->per_worker_bytes.has_value());
  EXPECT_EQ(*rescaler_->state().memory->per_worker_bytes, 460 << 20);
  ASSERT_EQ(sink_.Count("memory_budget"), 1);
  EXPECT_EQ(IntField(*sink_.Last("memory_budget"), "bytes"), 460 << 20);
  reader_.SetMemory(0);
  Poll();
  EXPECT_FALSE(rescaler_->state().memory->per_worker_bytes.has_value());
  EXPECT_EQ(sup_->target_workers(), 2);  // the CPU count never moved
  EXPECT_EQ(sink_.Count("rescale"), 0);
}

TEST_F(CpuRescalerTest, AReadThatFailsKeepsTheLastDecision) {
  reader_.SetCpus(4, 2);
  Start();
  reader_.error = absl::InternalError("cpu.max: garbage");
  Poll();
  Poll();
  ASSERT_TRUE(rescaler_->state().decision.has_value());
  EXPECT_EQ(rescaler_->state().decision->workers, 2);
  EXPECT_EQ(sup_->target_workers(), 2);
  EXPECT_EQ(sink_.Count("sizing_failed"), 0);  // said at start only
}

}  // namespace
}  // namespace corral::agent
