// Fuzzes the parsers of the kernel files the agent reads for sizing and
// metrics (agent/os/cgroup_reader.h, agent/os/procfs.h): /proc/self/
// mountinfo, /proc/self/cgroup, cpuset lists, cpu.max, mountinfo escapes,
// cgroup path containment and /proc/<pid>/stat (whose comm field a worker
// sets to anything with prctl(PR_SET_NAME)). Inside a container these files
// can be bind-mounted or faked; a bad one must be an error, not a crash.
//
// The first input byte picks the parser; the rest is the file.
// Invariants: a CPU count is within [0, 1 << 22]; any cpu.max gives
// 1 .. affinity workers; a relative cgroup path
// is "" or starts with '/' and never holds a ".." component; an escape
// written back (\ooo) unescapes to the same bytes; mountinfo and
// /proc/self/cgroup give one entry per non-blank line.
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "agent/os/cgroup_reader.h"
#include "agent/os/procfs.h"
#include "tests/fuzz/fuzz_check.h"

namespace corral::agent {
namespace {

size_t NonBlankLines(std::string_view text) {
  size_t n = 0;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    if (!absl::StripAsciiWhitespace(line).empty()) ++n;
  }
  return n;
}

void CheckCpuList(std::string_view in) {
  absl::StatusOr<int> n = CountCpuList(in);
  if (n.ok()) {
    FUZZ_CHECK(*n >= 0 && *n <= (1 << 22), "count ", *n, " for ",
               fuzz::Shown(in));
  }
}

void CheckRelative(std::string_view in) {
  const size_t nl = in.find('\n');
  if (nl == std::string_view::npos) return;
  const std::string_view root = in.substr(0, nl);
  const std::string_view path = in.substr(nl + 1);
  std::optional<std::string> rel = RelativeCgroupPath(root, path);
  if (!rel) return;
  FUZZ_CHECK(rel->empty() || (*rel)[0] == '/', "relative path '",
             fuzz::Shown(*rel), "'");
  for (absl::string_view part : absl::StrSplit(*rel, '/')) {
    FUZZ_CHECK(part != "..", "'..' in ", fuzz::Shown(*rel));
  }
}

void CheckUnescape(std::string_view in) {
  const std::string once = UnescapeMountField(in);
  FUZZ_CHECK(once.size() <= in.size(), "unescaping grew the text");
  // Every byte written as \ooo comes back as that byte.
  std::string escaped;
  for (unsigned char c : in) absl::StrAppendFormat(&escaped, "\\%03o", c);
  FUZZ_CHECK(UnescapeMountField(escaped) == in, "\\ooo of ", fuzz::Shown(in));
}

void Check(uint8_t which, std::string_view in) {
  switch (which % 7) {
    case 0: {
      absl::StatusOr<std::vector<MountInfo>> m = ParseMountInfo(in);
      if (m.ok()) FUZZ_CHECK(m->size() == NonBlankLines(in), "mount count");
      break;
    }
    case 1: {
      absl::StatusOr<std::vector<ProcCgroup>> c = ParseProcCgroup(in);
      if (c.ok()) FUZZ_CHECK(c->size() == NonBlankLines(in), "cgroup count");
      break;
    }
    case 2:
      CheckCpuList(in);
      break;
    case 3: {
      // cpu.max as the sizing policy uses it: any quota and period give
      // 1 .. affinity workers.
      absl::StatusOr<CpuMax> m = ParseCpuMax(in);
      if (!m.ok()) break;
      SizingInputs inputs;
      inputs.layout = CgroupLayout::kV2;
      inputs.affinity_cpus = 4;
      inputs.cpu_quotas.push_back(
          CpuQuota{CgroupVersion::kV2, "/", m->quota_us, m->period_us});
      for (CpuRounding r : {CpuRounding::kCeil, CpuRounding::kFloor}) {
        WorkerCount w = DecideWorkers(inputs, SizingPolicy{r, 1, 0});
        FUZZ_CHECK(w.workers >= 1 && w.workers <= 4, "workers ", w.workers,
                   " from cpu.max ", fuzz::Shown(in));
      }
      break;
    }
    case 4:
      CheckRelative(in);
      break;
    case 5:
      CheckUnescape(in);
      break;
    case 6:
      (void)ParseProcStat(std::string(in));
      break;
  }
}

}  // namespace
}  // namespace corral::agent

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  corral::agent::Check(
      data[0],
      std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  return 0;
}
