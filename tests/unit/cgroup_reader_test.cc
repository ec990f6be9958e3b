// Tests of agent/os/cgroup_reader.h: the parsers on strings, and
// ProcCgroupReader on the fixture trees in tests/fixtures/cgroup/<case>/
// (see the README there), with the affinity injected.

#include "agent/os/cgroup_reader.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/supervisor/sizing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace corral::agent {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

constexpr int64_t kMi = int64_t{1} << 20;
constexpr int64_t kV1Unlimited = 9223372036854771712;

// Debian's Abseil has its own string_view, which gMock's string matchers do
// not take.
std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

std::string Fixture(const std::string& name) {
  return std::string(CORRAL_TEST_FIXTURES) + "/cgroup/" + name;
}

absl::StatusOr<SizingInputs> ReadFixture(const std::string& name,
                                         int affinity) {
  ProcCgroupReader reader(
      Fixture(name), [affinity]() -> absl::StatusOr<int> { return affinity; });
  return reader.Read();
}

// Reads a fixture that must parse, and decides with `rounding`.
WorkerCount Decide(const std::string& name, int affinity,
                   CpuRounding rounding = CpuRounding::kCeil) {
  absl::StatusOr<SizingInputs> in = ReadFixture(name, affinity);
  EXPECT_TRUE(in.ok()) << name << ": " << in.status();
  if (!in.ok()) return {};
  SizingPolicy policy;
  policy.rounding = rounding;
  return DecideWorkers(*in, policy);
}

// ---- parsers ----

TEST(ParseProcCgroupTest, SplitsOnTheFirstTwoColonsOnly) {
  absl::StatusOr<std::vector<ProcCgroup>> c = ParseProcCgroup(
      "3:cpu,cpuacct:/system.slice/a:b.service\n1:name=systemd:/\n0::/x:y:z\n");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 3);
  EXPECT_EQ((*c)[0].hierarchy_id, 3);
  EXPECT_THAT((*c)[0].controllers, ElementsAre("cpu", "cpuacct"));
  EXPECT_EQ((*c)[0].path, "/system.slice/a:b.service");
  EXPECT_THAT((*c)[1].controllers, ElementsAre("name=systemd"));
  EXPECT_EQ((*c)[2].hierarchy_id, 0);
  EXPECT_THAT((*c)[2].controllers, IsEmpty());
  EXPECT_EQ((*c)[2].path, "/x:y:z");
}

TEST(ParseProcCgroupTest, RejectsMalformedLines) {
  EXPECT_THAT(
      Message(ParseProcCgroup("0::/\nno-colons\n").status()),
      HasSubstr("line 2 is not \"id:controllers:path\": \"no-colons\""));
  EXPECT_FALSE(ParseProcCgroup("x:cpu:/\n").ok());
  EXPECT_FALSE(ParseProcCgroup("1:cpu\n").ok());
  EXPECT_TRUE(ParseProcCgroup("").ok());
}

TEST(UnescapeMountFieldTest, UndoesOctalEscapes) {
  EXPECT_EQ(UnescapeMountField("/a\\040b"), "/a b");
  EXPECT_EQ(UnescapeMountField("/a\\011b\\012c\\134d"), "/a\tb\nc\\d");
  EXPECT_EQ(UnescapeMountField("/plain"), "/plain");
  EXPECT_EQ(UnescapeMountField("/a\\b"), "/a\\b");
  EXPECT_EQ(UnescapeMountField("/end\\04"), "/end\\04");
  EXPECT_EQ(UnescapeMountField("/x\\999"), "/x\\999");
}

TEST(ParseMountInfoTest, ReadsFieldsAroundTheOptionalOnes) {
  absl::StatusOr<std::vector<MountInfo>> m = ParseMountInfo(
      "32 30 0:27 /docker/a\\040b /sys/fs/cgroup/cpu,cpuacct rw,relatime "
      "shared:12 master:1 - cgroup cgroup rw,cpu,cpuacct\n"
      "40 30 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
      "41 22 0:50 / /mnt/c rw - 9p drvfs "
      "rw,path=C:\\134Program Files,uid=0\n");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 3);
  EXPECT_EQ((*m)[0].root, "/docker/a b");
  EXPECT_EQ((*m)[0].mount_point, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ((*m)[0].fs_type, "cgroup");
  EXPECT_THAT((*m)[0].super_options, ElementsAre("rw", "cpu", "cpuacct"));
  EXPECT_EQ((*m)[1].fs_type, "cgroup2");
  EXPECT_THAT((*m)[1].super_options, ElementsAre("rw"));
  // Super options may contain spaces.
  EXPECT_THAT((*m)[2].super_options,
              ElementsAre("rw", "path=C:\\134Program Files", "uid=0"));
}

TEST(ParseMountInfoTest, RejectsTooFewFields) {
  EXPECT_THAT(Message(ParseMountInfo("1 0 8:1 / /\n").status()),
              HasSubstr("line 1 has too few fields"));
  EXPECT_FALSE(ParseMountInfo("1 0 8:1 / / rw - ext4\n").ok());
  EXPECT_TRUE(ParseMountInfo("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n").ok());
}

TEST(RelativeCgroupPathTest, MapsAgainstTheMountRoot) {
  EXPECT_EQ(RelativeCgroupPath("/", "/"), "");
  EXPECT_EQ(RelativeCgroupPath("/", "/a/b"), "/a/b");
  EXPECT_EQ(RelativeCgroupPath("/", "/a/b/"), "/a/b");
  EXPECT_EQ(RelativeCgroupPath("/docker/x", "/docker/x"), "");
  EXPECT_EQ(RelativeCgroupPath("/docker/x", "/docker/x/c1"), "/c1");
  EXPECT_EQ(RelativeCgroupPath("/docker/x", "/docker/xy"), std::nullopt);
  EXPECT_EQ(RelativeCgroupPath("/docker/0123", "/docker"), std::nullopt);
  EXPECT_EQ(RelativeCgroupPath("/", "/../sibling"), std::nullopt);
  EXPECT_EQ(RelativeCgroupPath("/", "/a/../b"), std::nullopt);
  EXPECT_EQ(RelativeCgroupPath("/", "relative"), std::nullopt);
}

TEST(CountCpuListTest, CountsRangesAndSingles) {
  EXPECT_EQ(*CountCpuList("0-3,8,10-11"), 7);
  EXPECT_EQ(*CountCpuList("0\n"), 1);
  EXPECT_EQ(*CountCpuList(""), 0);
  EXPECT_EQ(*CountCpuList("\n"), 0);
  EXPECT_EQ(*CountCpuList("0-4095"), 4096);
  EXPECT_EQ(*CountCpuList("0-3,2-5"), 6);  // overlaps count once
  EXPECT_EQ(*CountCpuList("8,0-1"), 3);
  EXPECT_FALSE(CountCpuList("3-1").ok());
  EXPECT_FALSE(CountCpuList("a").ok());
  // Beyond any kernel's CPU numbers: refused, not counted into an overflow
  // (found by tests/fuzz/cgroup_fuzz.cc; UBSan reported the overflow).
  EXPECT_EQ(*CountCpuList("4194303"), 1);
  EXPECT_FALSE(CountCpuList("4194304").ok());
  EXPECT_FALSE(CountCpuList("0-9223372036854775807").ok());
  EXPECT_FALSE(CountCpuList("9223372036854775807").ok());
  EXPECT_FALSE(CountCpuList("0-10:2/5").ok());
  EXPECT_FALSE(CountCpuList("0,,1").ok());
  EXPECT_FALSE(CountCpuList("-1").ok());
}

TEST(ParseCpuMaxTest, AcceptsTheKernelForms) {
  absl::StatusOr<CpuMax> m = ParseCpuMax("max 100000\n");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->quota_us, kNoLimit);
  EXPECT_EQ(m->period_us, 100000);
  m = ParseCpuMax("150000 100000");
  EXPECT_EQ(m->quota_us, 150000);
  EXPECT_FALSE(m->extra_fields);
  m = ParseCpuMax("500000\n");
  EXPECT_EQ(m->quota_us, 500000);
  EXPECT_EQ(m->period_us, 100000);
  m = ParseCpuMax("150000 100000 extra\n");
  EXPECT_EQ(m->quota_us, 150000);
  EXPECT_EQ(m->period_us, 100000);
  EXPECT_TRUE(m->extra_fields);
  m = ParseCpuMax("250000 0\n");
  EXPECT_EQ(m->period_us, 0);
}

TEST(ParseCpuMaxTest, RejectsGarbage) {
  EXPECT_THAT(Message(ParseCpuMax("asdf 100000").status()),
              HasSubstr("quota \"asdf\" is not a number or max"));
  EXPECT_THAT(Message(ParseCpuMax("500000 njn").status()),
              HasSubstr("period \"njn\" is not a number"));
  EXPECT_FALSE(ParseCpuMax("500000us 100000").ok());
  EXPECT_FALSE(ParseCpuMax("123max").ok());
  EXPECT_EQ(Message(ParseCpuMax("").status()), "empty");
  EXPECT_EQ(Message(ParseCpuMax("\n").status()), "empty");
}

TEST(SchedAffinityCountTest, CountsThisProcess) {
  absl::StatusOr<int> n = SchedAffinityCount();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_GE(*n, 1);
}

TEST(ProcCgroupReaderTest, PropagatesAnAffinityError) {
  ProcCgroupReader reader(Fixture("v2"), []() -> absl::StatusOr<int> {
    return absl::InternalError("no affinity");
  });
  EXPECT_EQ(Message(reader.Read().status()), "no affinity");
}

TEST(ProcCgroupReaderTest, NoProcMeansNoCgroups) {
  absl::StatusOr<SizingInputs> in = ReadFixture("does-not-exist", 3);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->layout, CgroupLayout::kNone);
  EXPECT_EQ(DecideWorkers(*in, {}).workers, 3);
}

TEST(ProcCgroupReaderTest, UnreadableLimitFileIsANote) {
  if (geteuid() == 0) GTEST_SKIP() << "skipped: root reads any file";
  namespace fs = std::filesystem;
  const fs::path tree = fs::path(testing::TempDir()) /
                        ("corral-unreadable-" + std::to_string(getpid()));
  std::error_code error;  // the non-throwing overloads
  fs::remove_all(tree, error);
  fs::copy(Fixture("v2-parent-tighter"), tree, fs::copy_options::recursive,
           error);
  ASSERT_FALSE(error) << error.message();
  const fs::path denied = tree / "sys/fs/cgroup/kubepods/pod1/cpu.max";
  ASSERT_EQ(chmod(denied.c_str(), 0), 0);
  ProcCgroupReader reader(tree.string(),
                          []() -> absl::StatusOr<int> { return 8; });
  absl::StatusOr<SizingInputs> in = reader.Read();
  fs::remove_all(tree, error);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_THAT(in->notes,
              ElementsAre(AllOf(
                  StartsWith("open " + denied.string() + ": Permission denied"),
                  EndsWith("(cgroup /kubepods/pod1): treated as no limit"))));
  EXPECT_EQ(DecideWorkers(*in, {}).workers, 4);
}

// ---- fixture trees ----

TEST(FixtureTest, V1NestedKubernetesPath) {
  absl::StatusOr<SizingInputs> in = ReadFixture("v1", 4);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->layout, CgroupLayout::kV1);
  EXPECT_EQ(in->affinity_cpus, 4);
  const std::string p = "/kubepods/burstable/pod1/c1";
  EXPECT_THAT(in->cpu_quotas,
              ElementsAre(CpuQuota{CgroupVersion::kV1, p, 150000, 100000},
                          CpuQuota{CgroupVersion::kV1,
                                   "/kubepods/burstable/pod1", 200000, 100000},
                          CpuQuota{CgroupVersion::kV1, "/kubepods/burstable",
                                   -1, 100000},
                          CpuQuota{CgroupVersion::kV1, "/kubepods", -1, 100000},
                          CpuQuota{CgroupVersion::kV1, "/", -1, 100000}));
  ASSERT_TRUE(in->cpuset.has_value());
  EXPECT_EQ(*in->cpuset, (Cpuset{CgroupVersion::kV1, p, "0-3", 4}));
  ASSERT_EQ(in->memory_limits.size(), 5);
  EXPECT_EQ(in->memory_limits[0],
            (MemoryLimit{CgroupVersion::kV1, p, 512 * kMi}));
  EXPECT_EQ(in->memory_limits[4],
            (MemoryLimit{CgroupVersion::kV1, "/", kV1Unlimited}));
  EXPECT_THAT(in->notes, IsEmpty());

  const WorkerCount w = DecideWorkers(*in, {});
  EXPECT_EQ(w.workers, 2);
  EXPECT_THAT(
      w.explanation,
      StartsWith("workers=2: cgroup v1 quota 1.50 CPUs at " + p +
                 ", affinity 4, cpuset 4 CPUs (0-3) at " + p + ", ceil"));
  EXPECT_EQ(Decide("v1", 4, CpuRounding::kFloor).workers, 1);
  EXPECT_EQ(TightestMemoryLimit(*in)->limit_bytes, 512 * kMi);
}

TEST(FixtureTest, V2NestedKubernetesPath) {
  absl::StatusOr<SizingInputs> in = ReadFixture("v2", 4);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->layout, CgroupLayout::kV2);
  // The root cgroup has no cpu.max: three levels, not four.
  EXPECT_THAT(
      in->cpu_quotas,
      ElementsAre(
          CpuQuota{CgroupVersion::kV2, "/kubepods/pod1/c1", 150000, 100000},
          CpuQuota{CgroupVersion::kV2, "/kubepods/pod1", kNoLimit, 100000},
          CpuQuota{CgroupVersion::kV2, "/kubepods", kNoLimit, 100000}));
  EXPECT_EQ(in->cpuset->count, 4);
  EXPECT_THAT(
      in->memory_limits,
      ElementsAre(
          MemoryLimit{CgroupVersion::kV2, "/kubepods/pod1/c1", kNoLimit},
          MemoryLimit{CgroupVersion::kV2, "/kubepods/pod1", 1 << 30},
          MemoryLimit{CgroupVersion::kV2, "/kubepods", kNoLimit}));
  EXPECT_EQ(DecideWorkers(*in, {}).workers, 2);
  const MemoryBudget b = DecideMemoryBudget(
      *in, 2, WorkerMemoryBound{WorkerMemoryBound::Mode::kAuto});
  EXPECT_EQ(b.per_worker_bytes, 460 * kMi);
  EXPECT_EQ(b.limit->path, "/kubepods/pod1");
}

TEST(FixtureTest, HybridReadsCpuFromV1) {
  absl::StatusOr<SizingInputs> in = ReadFixture("hybrid", 4);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->layout, CgroupLayout::kHybrid);
  // The v2 decoy (0.5 CPU) under /sys/fs/cgroup/unified is not read.
  ASSERT_EQ(in->cpu_quotas.size(), 2);
  EXPECT_EQ(in->cpu_quotas[0].version, CgroupVersion::kV1);
  EXPECT_EQ(in->cpu_quotas[0].path, "/user.slice");
  const WorkerCount w = DecideWorkers(*in, {});
  EXPECT_EQ(w.workers, 3);
  EXPECT_THAT(w.explanation, HasSubstr("; cgroups hybrid;"));
  EXPECT_EQ(TightestMemoryLimit(*in), nullptr);  // v1 "unlimited"
}

TEST(FixtureTest, ThisHostSeparateCpuAndCpuacctMounts) {
  absl::StatusOr<SizingInputs> in = ReadFixture("this-host", 2);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->layout, CgroupLayout::kHybrid);
  // cpuacct is not cpu: its decoy quota is not read.
  EXPECT_THAT(in->cpu_quotas,
              ElementsAre(CpuQuota{CgroupVersion::kV1, "/", -1, 100000}));
  EXPECT_EQ(in->memory_limits.size(), 3);
  EXPECT_EQ(in->memory_limits[0].path,
            "/process_api/5996f2147a88f7833b121fc7089976ea");
  const WorkerCount w = DecideWorkers(*in, {});
  EXPECT_EQ(w.workers, 2);
  EXPECT_EQ(w.rule, SizingRule::kAffinity);
  EXPECT_EQ(TightestMemoryLimit(*in), nullptr);
}

TEST(FixtureTest, NoLimitAnywhere) {
  absl::StatusOr<SizingInputs> in = ReadFixture("v2-no-limit", 6);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_THAT(in->cpu_quotas, IsEmpty());
  EXPECT_THAT(in->memory_limits, IsEmpty());
  EXPECT_EQ(Decide("v2-no-limit", 6).workers, 6);
  EXPECT_THAT(Decide("v2-no-limit", 6).explanation,
              StartsWith("workers=6: affinity 6, no cgroup CPU quota"));
}

TEST(FixtureTest, MaxAndMinusOneMeanNoLimit) {
  EXPECT_EQ(Decide("v2-max", 3).workers, 3);
  EXPECT_EQ(Decide("v2-max", 3).rule, SizingRule::kAffinity);
  absl::StatusOr<SizingInputs> in = ReadFixture("v2-max", 3);
  EXPECT_THAT(in->memory_limits,
              ElementsAre(MemoryLimit{CgroupVersion::kV2, "/app", kNoLimit}));
  EXPECT_EQ(Decide("v1-quota-minus-one", 3).workers, 3);
  EXPECT_EQ(ReadFixture("v1-quota-minus-one", 3)->cpu_quotas.size(), 3);
}

TEST(FixtureTest, CpuMaxForms) {
  EXPECT_EQ(Decide("v2-extra-fields", 4).workers, 2);
  EXPECT_THAT(
      Decide("v2-extra-fields", 4).explanation,
      HasSubstr("cpu.max at /app has extra fields; used the first two"));
  EXPECT_EQ(Decide("v2-only-max", 8).workers, 5);
  EXPECT_EQ(Decide("v2-no-newline", 4).workers, 2);
  EXPECT_EQ(Decide("v2-huge", 4).workers, 1);
  EXPECT_EQ(Decide("v2-k8s-minimum", 4).workers, 1);
  EXPECT_EQ(Decide("v1-quota-below-period", 4).workers, 1);
}

TEST(FixtureTest, PeriodZeroOrMissingIsNoLimit) {
  for (const char* name : {"v2-period-zero", "v1-period-zero"}) {
    const WorkerCount w = Decide(name, 3);
    EXPECT_EQ(w.workers, 3) << name;
    EXPECT_THAT(w.explanation, HasSubstr("period 0 never divides")) << name;
  }
  const WorkerCount w = Decide("v1-undefined-period", 3);
  EXPECT_EQ(w.workers, 3);
  EXPECT_THAT(w.explanation, HasSubstr("no cpu.cfs_period_us at /app"));
}

TEST(FixtureTest, MalformedFilesAreErrorsNamingTheFile) {
  struct Case {
    const char* name;
    const char* message;
  };
  for (const Case& c : {
           Case{"v2-invalid-max",
                "/app/cpu.max (\"asdf 100000\"): quota "
                "\"asdf\" is not a number or max"},
           Case{"v2-invalid-period", "period \"njn\" is not a number"},
           Case{"v2-units", "quota \"500000us\" is not a number or max"},
           Case{"v2-empty", "/app/cpu.max (\"\"): empty"},
           Case{"v1-invalid",
                "/app/cpu.cfs_quota_us (\"non-an-integer\"): "
                "not a number"},
           Case{"v1-empty", "/app/cpu.cfs_quota_us (\"\"): empty"},
           Case{"invalid-cgroup", "proc/self/cgroup: line 1 is not"},
           Case{"invalid-mountinfo",
                "proc/self/mountinfo: line 1 has too "
                "few fields"},
       }) {
    absl::StatusOr<SizingInputs> in = ReadFixture(c.name, 2);
    ASSERT_FALSE(in.ok()) << c.name;
    EXPECT_EQ(in.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(in.status()), HasSubstr(c.message)) << c.name;
    EXPECT_THAT(Message(in.status()), StartsWith("cannot parse ")) << c.name;
  }
}

TEST(FixtureTest, ATighterParentWins) {
  const WorkerCount v2 = Decide("v2-parent-tighter", 8);
  EXPECT_EQ(v2.workers, 2);
  EXPECT_THAT(v2.explanation,
              StartsWith("workers=2: cgroup v2 quota 1.50 CPUs at "
                         "/kubepods/pod1,"));
  const WorkerCount v1 = Decide("v1-parent-tighter", 8);
  EXPECT_EQ(v1.workers, 1);
  EXPECT_THAT(v1.explanation, HasSubstr("quota 1.00 CPUs at /a,"));
  const WorkerCount leaf = Decide("v2-leaf-tighter", 8);
  EXPECT_EQ(leaf.workers, 2);
  EXPECT_THAT(leaf.explanation,
              HasSubstr("quota 2.00 CPUs at /kubepods/pod1/c1,"));
}

TEST(FixtureTest, CpusetSmallerThanQuota) {
  const WorkerCount w = Decide("cpuset-smaller", 4);
  EXPECT_EQ(w.workers, 1);
  EXPECT_EQ(w.rule, SizingRule::kCpuset);
  const WorkerCount v2 = Decide("v2-cpuset", 8);
  EXPECT_EQ(v2.workers, 4);
  EXPECT_THAT(v2.explanation, StartsWith("workers=4: cpuset 4 CPUs (0-1,4-5) "
                                         "at /app"));
}

TEST(FixtureTest, EscapedMountPaths) {
  absl::StatusOr<SizingInputs> in = ReadFixture("escaped-paths", 4);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_THAT(
      in->cpu_quotas,
      ElementsAre(CpuQuota{CgroupVersion::kV1, "/my app/c1", 150000, 100000},
                  CpuQuota{CgroupVersion::kV1, "/my app", -1, 100000}));
  EXPECT_EQ(DecideWorkers(*in, {}).workers, 2);
}

TEST(FixtureTest, ColonsInTheCgroupPath) {
  absl::StatusOr<SizingInputs> in = ReadFixture("colon-path", 4);
  ASSERT_TRUE(in.ok()) << in.status();
  ASSERT_EQ(in->cpu_quotas.size(), 2);
  EXPECT_EQ(in->cpu_quotas[0].path, "/kubepods/pod:1/c:1");
  EXPECT_EQ(DecideWorkers(*in, {}).workers, 2);
  EXPECT_EQ(Decide("v1-colon-path", 4).workers, 1);
  EXPECT_THAT(Decide("v1-colon-path", 4).explanation,
              HasSubstr("at /system.slice/app:web.service,"));
}

TEST(FixtureTest, V1MountRootIsTheContainersCgroup) {
  absl::StatusOr<SizingInputs> in = ReadFixture("v1-mount-root", 4);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_THAT(
      in->cpu_quotas,
      ElementsAre(CpuQuota{CgroupVersion::kV1, "/docker/abc", 150000, 100000}));
  EXPECT_EQ(in->cpuset->path, "/docker/abc");
  EXPECT_EQ(TightestMemoryLimit(*in)->limit_bytes, 256 * kMi);
  EXPECT_EQ(DecideWorkers(*in, {}).workers, 2);
}

TEST(FixtureTest, V2MountRootMapsThePath) {
  absl::StatusOr<SizingInputs> in = ReadFixture("v2-mount-root", 4);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_THAT(
      in->cpu_quotas,
      ElementsAre(
          CpuQuota{CgroupVersion::kV2, "/kubepods/pod1/c1", kNoLimit, 100000},
          CpuQuota{CgroupVersion::kV2, "/kubepods/pod1", 50000, 100000}));
  EXPECT_EQ(DecideWorkers(*in, {}).workers, 1);
  EXPECT_EQ(in->memory_limits[0].limit_bytes, 512 * kMi);
}

TEST(FixtureTest, V2CgroupNamespaceSeesOnlyItsOwnCgroup) {
  absl::StatusOr<SizingInputs> in = ReadFixture("v2-cgroupns", 4);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_THAT(in->cpu_quotas,
              ElementsAre(CpuQuota{CgroupVersion::kV2, "/", 100000, 100000}));
  EXPECT_EQ(DecideWorkers(*in, {}).workers, 1);
  EXPECT_EQ(TightestMemoryLimit(*in)->limit_bytes, 256 * kMi);
}

TEST(FixtureTest, PathOutsideTheNamespaceIsNotRead) {
  absl::StatusOr<SizingInputs> in = ReadFixture("v2-outside-namespace", 4);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_THAT(in->cpu_quotas, IsEmpty());
  EXPECT_THAT(in->notes,
              ElementsAre("cgroup v2 path /../sibling is not under the root / "
                          "of the mount at /sys/fs/cgroup; its limits are not "
                          "visible"));
  EXPECT_EQ(DecideWorkers(*in, {}).workers, 4);
}

TEST(FixtureTest, AutomaxprocsV1DockerMounts) {
  absl::StatusOr<SizingInputs> in = ReadFixture("automaxprocs-v1", 8);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->layout, CgroupLayout::kV1);
  EXPECT_THAT(in->cpu_quotas, ElementsAre(CpuQuota{CgroupVersion::kV1,
                                                   "/docker", 600000, 100000}));
  // Two memory mounts: the one /docker/large is visible in wins.
  EXPECT_THAT(
      in->memory_limits,
      ElementsAre(MemoryLimit{CgroupVersion::kV1, "/docker/large", 1 << 30},
                  MemoryLimit{CgroupVersion::kV1, "/docker", kV1Unlimited}));
  EXPECT_EQ(in->cpuset->count, 8);
  EXPECT_EQ(DecideWorkers(*in, {}).workers, 6);
}

TEST(FixtureTest, AutomaxprocsUntranslatableMountRoot) {
  absl::StatusOr<SizingInputs> in =
      ReadFixture("automaxprocs-untranslatable", 4);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_THAT(in->cpu_quotas, IsEmpty());
  EXPECT_THAT(in->notes, ElementsAre(HasSubstr(
                             "cgroup v1 path /docker is not under the root "
                             "/docker/0123456789abcdef")));
  EXPECT_EQ(DecideWorkers(*in, {}).workers, 4);
}

TEST(FixtureTest, AutomaxprocsV2Cases) {
  EXPECT_EQ(Decide("automaxprocs-v2-subdir", 8).workers, 3);
  EXPECT_EQ(Decide("automaxprocs-v2-subdir", 8, CpuRounding::kFloor).workers,
            2);
  // "1::/" is a named hierarchy, not v2: no cgroup is found.
  absl::StatusOr<SizingInputs> in = ReadFixture("automaxprocs-v2-no-match", 4);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->layout, CgroupLayout::kNone);
  EXPECT_THAT(in->cpu_quotas, IsEmpty());
}

TEST(FixtureTest, DuplicateMountPrefersSysFsCgroup) {
  EXPECT_EQ(Decide("v1-duplicate-mount", 4).workers, 2);
}

// OpenJDK TestCPUAwareness: --cpus 0.5 -> 1, 1.0 -> 1, 1.2 -> 2, 1.8 -> 2,
// 2.0 -> 2 with ceil; floor gives 1, 1, 1, 1, 2.
TEST(FixtureTest, JdkCpusMatrix) {
  struct Case {
    const char* cpus;
    int ceil;
    int floor;
  };
  for (const Case& c : {Case{"0.5", 1, 1}, Case{"1.0", 1, 1}, Case{"1.2", 2, 1},
                        Case{"1.8", 2, 1}, Case{"2.0", 2, 2}}) {
    const std::string name = std::string("jdk-cpus-") + c.cpus;
    EXPECT_EQ(Decide(name, 4).workers, c.ceil) << name;
    EXPECT_EQ(Decide(name, 4, CpuRounding::kFloor).workers, c.floor) << name;
    // Capped at the host's CPUs.
    EXPECT_EQ(Decide(name, 1).workers, 1) << name;
  }
}

}  // namespace
}  // namespace corral::agent
