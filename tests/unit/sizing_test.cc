// Tests of the sizing policy (agent/supervisor/sizing.h) and the sizing flag
// parsers (agent/supervisor/size_parse.h), on hand-built inputs.

#include "agent/supervisor/sizing.h"

#include <cstdint>
#include <limits>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "agent/supervisor/size_parse.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace corral::agent {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Debian's Abseil has its own string_view, which gMock's string matchers do
// not take.
std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

constexpr int64_t kMi = int64_t{1} << 20;
constexpr int64_t kGi = int64_t{1} << 30;
constexpr int64_t kV1Unlimited = 9223372036854771712;

CpuQuota V1Quota(std::string path, int64_t quota, int64_t period = 100000) {
  return {CgroupVersion::kV1, std::move(path), quota, period};
}

CpuQuota V2Quota(std::string path, int64_t quota, int64_t period = 100000) {
  return {CgroupVersion::kV2, std::move(path), quota, period};
}

SizingInputs Inputs(int affinity, std::vector<CpuQuota> quotas = {}) {
  SizingInputs in;
  in.layout = CgroupLayout::kV2;
  in.affinity_cpus = affinity;
  in.cpu_quotas = std::move(quotas);
  return in;
}

SizingPolicy Rounding(CpuRounding rounding) {
  SizingPolicy p;
  p.rounding = rounding;
  return p;
}

TEST(DecideWorkersTest, NoQuotaUsesAffinity) {
  const WorkerCount w = DecideWorkers(Inputs(3), {});
  EXPECT_EQ(w.workers, 3);
  EXPECT_EQ(w.rule, SizingRule::kAffinity);
  EXPECT_FALSE(w.cpu_limit.has_value());
  EXPECT_THAT(w.explanation,
              StartsWith("workers=3: affinity 3, no cgroup CPU quota, ceil"));
}

TEST(DecideWorkersTest, LogLineNamesTheQuotaThatDecided) {
  SizingInputs in =
      Inputs(2, {V1Quota("/kubepods/pod1", 150000),
                 V1Quota("/kubepods", kNoLimit), V1Quota("/", -1)});
  in.layout = CgroupLayout::kV1;
  const WorkerCount w = DecideWorkers(in, {});
  EXPECT_EQ(w.workers, 2);
  EXPECT_EQ(w.rule, SizingRule::kCpuQuota);
  EXPECT_EQ(w.explanation,
            "workers=2: cgroup v1 quota 1.50 CPUs at /kubepods/pod1, "
            "affinity 2, ceil, min-workers 1, max-workers auto; cgroups v1; "
            "cpu v1 /kubepods/pod1 150000/100000, v1 /kubepods max/100000, "
            "v1 / max/100000");
}

TEST(DecideWorkersTest, QuotaAboveAffinityIsCappedByAffinity) {
  const WorkerCount w = DecideWorkers(Inputs(2, {V2Quota("/c", 400000)}), {});
  EXPECT_EQ(w.workers, 2);
  EXPECT_EQ(w.rule, SizingRule::kAffinity);
  EXPECT_DOUBLE_EQ(*w.cpu_limit, 4.0);
  EXPECT_THAT(w.explanation,
              StartsWith("workers=2: affinity 2, cgroup v2 quota 4.00 CPUs "
                         "at /c, ceil"));
}

// OpenJDK's TestCPUAwareness --cpus matrix (ceil), with what floor gives, on
// a 4-CPU host; and its "capped at host CPUs" case.
struct CpusCase {
  int64_t quota;
  int ceil;
  int floor;
};

void PrintTo(const CpusCase& c, std::ostream* os) {
  *os << "quota " << c.quota << "/100000";
}

class JdkCpusMatrixTest : public ::testing::TestWithParam<CpusCase> {};

TEST_P(JdkCpusMatrixTest, RoundsAsConfigured) {
  const CpusCase c = GetParam();
  for (CgroupVersion v : {CgroupVersion::kV1, CgroupVersion::kV2}) {
    const SizingInputs in = Inputs(4, {{v, "/c", c.quota, 100000}});
    EXPECT_EQ(DecideWorkers(in, Rounding(CpuRounding::kCeil)).workers, c.ceil)
        << "quota " << c.quota;
    EXPECT_EQ(DecideWorkers(in, Rounding(CpuRounding::kFloor)).workers, c.floor)
        << "quota " << c.quota;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cpus, JdkCpusMatrixTest,
    ::testing::Values(CpusCase{50000, 1, 1}, CpusCase{100000, 1, 1},
                      CpusCase{120000, 2, 1}, CpusCase{180000, 2, 1},
                      CpusCase{200000, 2, 2}, CpusCase{150000, 2, 1},
                      CpusCase{270000, 3, 2},  // automaxprocs
                      CpusCase{400000, 4, 4}, CpusCase{800000, 4, 4}));

TEST(DecideWorkersTest, QuotaOfMinusOneOrZeroIsNoLimit) {
  EXPECT_EQ(DecideWorkers(Inputs(3, {V1Quota("/a", -1)}), {}).workers, 3);
  EXPECT_EQ(DecideWorkers(Inputs(3, {V1Quota("/a", 0)}), {}).workers, 3);
  EXPECT_EQ(DecideWorkers(Inputs(3, {V2Quota("/a", kNoLimit)}), {}).rule,
            SizingRule::kAffinity);
}

TEST(DecideWorkersTest, PeriodZeroNeverDividesAndIsNoted) {
  const WorkerCount w =
      DecideWorkers(Inputs(3, {V2Quota("/a", 250000, 0)}), {});
  EXPECT_EQ(w.workers, 3);
  EXPECT_EQ(w.rule, SizingRule::kAffinity);
  EXPECT_FALSE(w.cpu_limit.has_value());
  EXPECT_THAT(w.explanation,
              HasSubstr("notes: cgroup v2 quota 250000us at /a ignored: "
                        "period 0 never divides"));
}

TEST(DecideWorkersTest, ATighterAncestorWins) {
  const WorkerCount w = DecideWorkers(
      Inputs(8, {V2Quota("/k/pod/c", 400000), V2Quota("/k/pod", 150000),
                 V2Quota("/k", kNoLimit)}),
      {});
  EXPECT_EQ(w.workers, 2);
  EXPECT_DOUBLE_EQ(*w.cpu_limit, 1.5);
  EXPECT_THAT(w.explanation,
              StartsWith("workers=2: cgroup v2 quota 1.50 CPUs at /k/pod,"));
}

TEST(DecideWorkersTest, ATighterLeafWins) {
  const WorkerCount w = DecideWorkers(
      Inputs(8, {V2Quota("/k/c", 200000), V2Quota("/k", 400000)}), {});
  EXPECT_EQ(w.workers, 2);
  EXPECT_THAT(w.explanation, HasSubstr("quota 2.00 CPUs at /k/c,"));
}

TEST(DecideWorkersTest, EqualQuotasNameTheDeepestCgroup) {
  const WorkerCount w = DecideWorkers(
      Inputs(8, {V2Quota("/k/c", 100000, 50000), V2Quota("/k", 200000)}), {});
  EXPECT_EQ(w.workers, 2);
  EXPECT_THAT(w.explanation, HasSubstr("quota 2.00 CPUs at /k/c,"));
}

TEST(DecideWorkersTest, CpusetSmallerThanQuotaWins) {
  SizingInputs in = Inputs(4, {V1Quota("/docker/x", 400000)});
  in.cpuset = Cpuset{CgroupVersion::kV1, "/docker/x", "2", 1};
  const WorkerCount w = DecideWorkers(in, {});
  EXPECT_EQ(w.workers, 1);
  EXPECT_EQ(w.rule, SizingRule::kCpuset);
  EXPECT_THAT(w.explanation,
              StartsWith("workers=1: cpuset 1 CPUs (2) at /docker/x, cgroup "
                         "v1 quota 4.00 CPUs at /docker/x, affinity 4"));
}

TEST(DecideWorkersTest, CpusetLargerThanAffinityDoesNotRaiseIt) {
  SizingInputs in = Inputs(2);
  in.cpuset = Cpuset{CgroupVersion::kV2, "/", "0-7", 8};
  EXPECT_EQ(DecideWorkers(in, {}).workers, 2);
  EXPECT_EQ(DecideWorkers(in, {}).rule, SizingRule::kAffinity);
}

TEST(DecideWorkersTest, MinWorkersRaisesTheCount) {
  SizingPolicy policy;
  policy.min_workers = 3;
  const WorkerCount w =
      DecideWorkers(Inputs(4, {V2Quota("/c", 50000)}), policy);
  EXPECT_EQ(w.workers, 3);
  EXPECT_EQ(w.rule, SizingRule::kMinWorkers);
  EXPECT_THAT(w.explanation,
              StartsWith("workers=3: min-workers 3 (usable CPUs 1), cgroup v2 "
                         "quota 0.50 CPUs at /c, affinity 4, ceil, "
                         "max-workers auto"));
}

TEST(DecideWorkersTest, MaxWorkersLowersTheCount) {
  SizingPolicy policy;
  policy.max_workers = 4;
  const WorkerCount w = DecideWorkers(Inputs(16), policy);
  EXPECT_EQ(w.workers, 4);
  EXPECT_EQ(w.rule, SizingRule::kMaxWorkers);
  EXPECT_THAT(w.explanation,
              StartsWith("workers=4: max-workers 4 (usable CPUs "
                         "16), no cgroup CPU quota, affinity 16"));
}

TEST(DecideWorkersTest, UnknownAffinityCountsAsOneCpu) {
  const WorkerCount w = DecideWorkers(Inputs(0), {});
  EXPECT_EQ(w.workers, 1);
  EXPECT_THAT(w.explanation, HasSubstr("affinity unknown, assumed 1 CPU"));
}

TEST(DecideWorkersTest, ExtremeQuotasDoNotOverflow) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(DecideWorkers(Inputs(4, {V2Quota("/c", kMax, kMax)}), {}).workers,
            1);
  EXPECT_EQ(DecideWorkers(Inputs(4, {V2Quota("/c", kMax, 1)}), {}).workers, 4);
  // Compared exactly: kMax/2 is tighter than kMax/1.
  const SizingInputs in =
      Inputs(4, {V2Quota("/a", kMax, 1), V2Quota("/b", kMax, 2)});
  ASSERT_NE(TightestCpuQuota(in), nullptr);
  EXPECT_EQ(TightestCpuQuota(in)->path, "/b");
  // Kubernetes' minimum quota (10m CPU) still runs one worker.
  EXPECT_EQ(DecideWorkers(Inputs(4, {V2Quota("/c", 1000)}), {}).workers, 1);
}

TEST(DecideWorkersTest, ExplanationListsEveryInput) {
  SizingInputs in = Inputs(4, {V1Quota("/a/b", 300000), V1Quota("/a", 100000)});
  in.layout = CgroupLayout::kHybrid;
  in.cpuset = Cpuset{CgroupVersion::kV1, "/a/b", "0-3", 4};
  in.memory_limits = {{CgroupVersion::kV1, "/a/b", 512 * kMi},
                      {CgroupVersion::kV1, "/", kV1Unlimited}};
  in.notes = {"no cpu.cfs_period_us at /x"};
  SizingPolicy policy;
  policy.rounding = CpuRounding::kFloor;
  policy.max_workers = 8;
  EXPECT_EQ(DecideWorkers(in, policy).explanation,
            "workers=1: cgroup v1 quota 1.00 CPUs at /a, affinity 4, cpuset 4 "
            "CPUs (0-3) at /a/b, floor, min-workers 1, max-workers 8; cgroups "
            "hybrid; cpu v1 /a/b 300000/100000, v1 /a 100000/100000; memory "
            "v1 /a/b 512Mi, v1 / unlimited (9223372036854771712); notes: no "
            "cpu.cfs_period_us at /x");
}

TEST(ScaleCeilingTest, AutoIsFourPerCpuAtLeastEight) {
  SizingPolicy p;  // --max-workers=auto
  EXPECT_EQ(DecideScaleCeiling(p, 1, 1).workers, 8);
  EXPECT_EQ(DecideScaleCeiling(p, 2, 2).workers, 8);
  EXPECT_EQ(DecideScaleCeiling(p, 3, 3).workers, 12);
  EXPECT_EQ(DecideScaleCeiling(p, 64, 64).workers, 256);
  EXPECT_EQ(DecideScaleCeiling(p, 2000, 1).workers, kMaxScaleWorkers);
  // Never below the start count or --min-workers.
  EXPECT_EQ(DecideScaleCeiling(p, 2, 30).workers, 30);
  p.min_workers = 40;
  EXPECT_EQ(DecideScaleCeiling(p, 2, 2).workers, 40);
  EXPECT_THAT(DecideScaleCeiling({}, 2, 2).why,
              HasSubstr("--max-workers=N raises it, --max-workers=none "
                        "removes it"));
}

TEST(ScaleCeilingTest, ExplicitOrNone) {
  SizingPolicy p;
  p.max_workers = 6;
  EXPECT_EQ(DecideScaleCeiling(p, 64, 2).workers, 6);
  EXPECT_EQ(DecideScaleCeiling(p, 64, 2).why, "--max-workers is 6");
  p.max_workers = kMaxWorkersNone;
  EXPECT_EQ(DecideScaleCeiling(p, 1, 1).workers, kMaxScaleWorkers);
}

TEST(ValidateSizingPolicyTest, NamesTheFlag) {
  EXPECT_TRUE(ValidateSizingPolicy({}).ok());
  SizingPolicy p;
  p.min_workers = 0;
  EXPECT_THAT(Message(ValidateSizingPolicy(p)), HasSubstr("--min-workers=0"));
  p = {};
  p.max_workers = -2;
  EXPECT_THAT(Message(ValidateSizingPolicy(p)), HasSubstr("--max-workers=-2"));
  p = {};
  p.min_workers = 4;
  p.max_workers = 2;
  EXPECT_EQ(Message(ValidateSizingPolicy(p)),
            "--max-workers=2 is below --min-workers=4");
  EXPECT_EQ(ValidateSizingPolicy(p).code(), absl::StatusCode::kInvalidArgument);
}

// ---- memory ----

SizingInputs MemoryInputs(std::vector<MemoryLimit> limits) {
  SizingInputs in = Inputs(2);
  in.memory_limits = std::move(limits);
  return in;
}

const WorkerMemoryBound kAuto{WorkerMemoryBound::Mode::kAuto};

TEST(MemoryBudgetTest, TightestLimitIgnoresUnlimitedAndMax) {
  const SizingInputs in =
      MemoryInputs({{CgroupVersion::kV1, "/c", kV1Unlimited},
                    {CgroupVersion::kV1, "/p", 2 * kGi},
                    {CgroupVersion::kV1, "/", kV1Unlimited},
                    {CgroupVersion::kV2, "/x", kNoLimit}});
  ASSERT_NE(TightestMemoryLimit(in), nullptr);
  EXPECT_EQ(TightestMemoryLimit(in)->path, "/p");
  EXPECT_EQ(
      TightestMemoryLimit(MemoryInputs({{CgroupVersion::kV1, "/", kV1Unlimited},
                                        {CgroupVersion::kV2, "/", kNoLimit}})),
      nullptr);
}

TEST(MemoryBudgetTest, AutoSharesTheLimitAfterHeadroom) {
  const SizingInputs in =
      MemoryInputs({{CgroupVersion::kV2, "/pod/c", kNoLimit},
                    {CgroupVersion::kV2, "/pod", kGi}});
  const MemoryBudget b = DecideMemoryBudget(in, 2, kAuto);
  // Headroom: 10% of 1Gi, rounded up to a MiB = 103Mi; (1024 - 103) / 2
  // = 460.5Mi, rounded down to a MiB.
  EXPECT_EQ(b.headroom_bytes, 103 * kMi);
  EXPECT_EQ(b.per_worker_bytes, 460 * kMi);
  ASSERT_TRUE(b.limit.has_value());
  EXPECT_EQ(b.limit->path, "/pod");
  EXPECT_EQ(b.explanation,
            "max-worker-memory=460Mi: auto, (1Gi cgroup v2 limit at /pod - "
            "103Mi headroom) / 2 workers");
}

TEST(MemoryBudgetTest, AutoKeepsAtLeastTheMinimumHeadroom) {
  const SizingInputs in = MemoryInputs({{CgroupVersion::kV1, "/c", 256 * kMi}});
  const MemoryBudget b = DecideMemoryBudget(in, 1, kAuto);
  EXPECT_EQ(b.headroom_bytes, 64 * kMi);
  EXPECT_EQ(b.per_worker_bytes, 192 * kMi);
  EXPECT_THAT(b.explanation, HasSubstr("/ 1 worker"));
}

TEST(MemoryBudgetTest, AutoHeadroomIsAtMostHalfATinyLimit) {
  const SizingInputs in = MemoryInputs({{CgroupVersion::kV2, "/c", 64 * kMi}});
  const MemoryBudget b = DecideMemoryBudget(in, 4, kAuto);
  EXPECT_EQ(b.headroom_bytes, 32 * kMi);
  EXPECT_EQ(b.per_worker_bytes, 8 * kMi);
}

TEST(MemoryBudgetTest, AutoWithoutALimitHasNoBound) {
  const MemoryBudget b = DecideMemoryBudget(
      MemoryInputs({{CgroupVersion::kV1, "/", kV1Unlimited}}), 2, kAuto);
  EXPECT_FALSE(b.per_worker_bytes.has_value());
  EXPECT_FALSE(b.limit.has_value());
  EXPECT_EQ(b.explanation,
            "max-worker-memory=auto: no bound, no cgroup memory limit");
}

TEST(MemoryBudgetTest, FixedWarnsWhenWorkersCannotFit) {
  const SizingInputs in = MemoryInputs({{CgroupVersion::kV2, "/c", kGi}});
  const WorkerMemoryBound fixed{WorkerMemoryBound::Mode::kFixed, 512 * kMi};
  const MemoryBudget fits = DecideMemoryBudget(in, 1, fixed);
  EXPECT_EQ(fits.per_worker_bytes, 512 * kMi);
  EXPECT_EQ(fits.explanation,
            "max-worker-memory=512Mi: fixed; 1Gi cgroup v2 limit at /c");
  const MemoryBudget over = DecideMemoryBudget(in, 2, fixed);
  EXPECT_EQ(over.per_worker_bytes, 512 * kMi);
  EXPECT_THAT(over.explanation,
              HasSubstr("warning: 2 workers x 512Mi plus the agent's headroom "
                        "exceed the limit"));
}

TEST(MemoryBudgetTest, OffHasNoBound) {
  const MemoryBudget b = DecideMemoryBudget(
      MemoryInputs({{CgroupVersion::kV2, "/c", kGi}}), 2, {});
  EXPECT_FALSE(b.per_worker_bytes.has_value());
  EXPECT_EQ(b.explanation, "max-worker-memory=off; 1Gi cgroup v2 limit at /c");
}

TEST(MemoryBudgetTest, ZeroWorkersCountAsOne) {
  const MemoryBudget b = DecideMemoryBudget(
      MemoryInputs({{CgroupVersion::kV2, "/c", 256 * kMi}}), 0, kAuto);
  EXPECT_EQ(b.per_worker_bytes, 192 * kMi);
}

// ---- flag parsing (sizes themselves: tests/common/size_test.cc) ----

TEST(ParseMaxWorkerMemoryTest, AcceptsAutoOffAndSizes) {
  EXPECT_EQ(*ParseMaxWorkerMemory("auto"), kAuto);
  EXPECT_EQ(*ParseMaxWorkerMemory("off"), WorkerMemoryBound{});
  EXPECT_EQ(*ParseMaxWorkerMemory("512Mi"),
            (WorkerMemoryBound{WorkerMemoryBound::Mode::kFixed, 512 * kMi}));
}

TEST(ParseMaxWorkerMemoryTest, ErrorsNameTheFlag) {
  EXPECT_EQ(Message(ParseMaxWorkerMemory("12X").status()).substr(0, 48),
            "--max-worker-memory: invalid size \"12X\": unknown");
  EXPECT_THAT(Message(ParseMaxWorkerMemory("12X").status()),
              HasSubstr("(or auto, or off)"));
  EXPECT_THAT(Message(ParseMaxWorkerMemory("0").status()),
              AllOf(HasSubstr("--max-worker-memory=0"), HasSubstr("use off")));
  EXPECT_FALSE(ParseMaxWorkerMemory("").ok());
  EXPECT_FALSE(ParseMaxWorkerMemory("Auto").ok());
}

TEST(ParseCpuRoundingTest, CeilOrFloor) {
  EXPECT_EQ(*ParseCpuRounding("ceil"), CpuRounding::kCeil);
  EXPECT_EQ(*ParseCpuRounding("floor"), CpuRounding::kFloor);
  const absl::Status bad = ParseCpuRounding("round").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(bad), StartsWith("--cpu-rounding=\"round\": expected "
                                       "ceil"));
  EXPECT_FALSE(ParseCpuRounding("").ok());
}

TEST(NamesTest, Print) {
  EXPECT_EQ(CpuRoundingName(CpuRounding::kFloor), "floor");
  EXPECT_EQ(CgroupLayoutName(CgroupLayout::kHybrid), "hybrid");
  EXPECT_EQ(CgroupVersionName(CgroupVersion::kV1), "v1");
  EXPECT_EQ(SizingRuleName(SizingRule::kCpuQuota), "cpu quota");
}

}  // namespace
}  // namespace corral::agent
