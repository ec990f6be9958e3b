#include "agent/os/cgroup_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/os/errors.h"

namespace corral::agent {
namespace {

// v2 cpu.max with one field: the kernel's default period.
constexpr int64_t kDefaultPeriodUs = 100000;

// Debian's Abseil has its own string_view type.
absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }
std::string_view Std(absl::string_view s) { return {s.data(), s.size()}; }

// Reads a small kernel file whole. /proc and cgroup files report size 0, so
// read to EOF instead of trusting fstat.
absl::StatusOr<std::string> ReadFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path));
  std::string text;
  char buf[4096];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      close(fd);
      return ErrnoStatus(error, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

absl::Status Malformed(const std::string& path, absl::string_view text,
                       absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrFormat("cannot parse %s (\"%s\"): %s", path,
                      absl::CEscape(absl::StripAsciiWhitespace(text)), why));
}

absl::Status ParseError(const std::string& path, const absl::Status& status) {
  return absl::InvalidArgumentError(
      absl::StrCat("cannot parse ", path, ": ", status.message()));
}

absl::StatusOr<int64_t> ParseInt64(const std::string& path,
                                   absl::string_view text) {
  const absl::string_view value = absl::StripAsciiWhitespace(text);
  int64_t n = 0;
  if (value.empty()) return Malformed(path, text, "empty");
  if (!absl::SimpleAtoi(value, &n)) {
    return Malformed(path, text, "not a number");
  }
  return n;
}

bool Contains(const std::vector<std::string>& list, absl::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

void AddNote(std::vector<std::string>* notes, std::string note) {
  if (!Contains(*notes, note)) notes->push_back(std::move(note));
}

// One directory of a cgroup hierarchy: where its files are, and its name.
struct Level {
  std::string dir;          // <root><mount point><relative path>
  std::string cgroup_path;  // e.g. "/kubepods/pod1"
};

// Where one controller's files are: the agent's cgroup first, then each
// ancestor up to the mount point.
struct Hierarchy {
  CgroupVersion version = CgroupVersion::kV2;
  std::vector<Level> levels;
};

std::string JoinCgroupPath(absl::string_view mount_root,
                           absl::string_view rel) {
  if (rel.empty()) return std::string(mount_root);
  if (mount_root == "/") return std::string(rel);
  return absl::StrCat(mount_root, rel);
}

// Prefers a mount the path is visible in, then one under /sys/fs/cgroup (a
// container may bind the same hierarchy twice).
const MountInfo* ChooseMount(const std::vector<MountInfo>& mounts,
                             absl::string_view fs_type,
                             absl::string_view controller,
                             absl::string_view path) {
  const MountInfo* best = nullptr;
  int best_score = -1;
  for (const MountInfo& m : mounts) {
    if (m.fs_type != fs_type) continue;
    if (!controller.empty() && !Contains(m.super_options, controller)) continue;
    const int score =
        (RelativeCgroupPath(m.root, Std(path)) ? 2 : 0) +
        (absl::StartsWith(m.mount_point, "/sys/fs/cgroup") ? 1 : 0);
    if (score > best_score) {
      best = &m;
      best_score = score;
    }
  }
  return best;
}

Hierarchy BuildLevels(const std::string& root, CgroupVersion version,
                      const MountInfo& mount, std::string rel) {
  Hierarchy h{version, {}};
  while (true) {
    h.levels.push_back({absl::StrCat(root, mount.mount_point, rel),
                        JoinCgroupPath(mount.root, rel)});
    if (rel.empty()) break;
    rel.resize(rel.rfind('/'));
  }
  return h;
}

// The parsed /proc/self files, and where each controller lives.
class CgroupMounts {
 public:
  CgroupMounts(std::string root, std::vector<ProcCgroup> cgroups,
               std::vector<MountInfo> mounts)
      : root_(std::move(root)),
        cgroups_(std::move(cgroups)),
        mounts_(std::move(mounts)) {}

  CgroupLayout Layout() const {
    bool v1 = false;
    for (const ProcCgroup& c : cgroups_) {
      for (const std::string& controller : c.controllers) {
        if (c.hierarchy_id == 0 || absl::StartsWith(controller, "name=")) {
          continue;
        }
        v1 =
            v1 || ChooseMount(mounts_, "cgroup", controller, c.path) != nullptr;
      }
    }
    const bool v2 = FindV2() != nullptr &&
                    ChooseMount(mounts_, "cgroup2", "", "/") != nullptr;
    if (v1 && v2) return CgroupLayout::kHybrid;
    if (v1) return CgroupLayout::kV1;
    return v2 ? CgroupLayout::kV2 : CgroupLayout::kNone;
  }

  // The hierarchy holding `controller`: a v1 hierarchy that names it, else
  // the v2 unified hierarchy (whose files exist only where it is enabled).
  std::optional<Hierarchy> Locate(absl::string_view controller,
                                  std::vector<std::string>* notes) const {
    for (const ProcCgroup& c : cgroups_) {
      if (c.hierarchy_id == 0 || !Contains(c.controllers, controller)) continue;
      const MountInfo* m = ChooseMount(mounts_, "cgroup", controller, c.path);
      if (m == nullptr) {
        AddNote(notes, absl::StrCat("cgroup v1 ", controller,
                                    " controller is not mounted"));
        return std::nullopt;
      }
      return Visible(CgroupVersion::kV1, *m, c.path, notes);
    }
    const ProcCgroup* v2 = FindV2();
    if (v2 == nullptr) return std::nullopt;
    const MountInfo* m = ChooseMount(mounts_, "cgroup2", "", v2->path);
    if (m == nullptr) return std::nullopt;
    return Visible(CgroupVersion::kV2, *m, v2->path, notes);
  }

 private:
  const ProcCgroup* FindV2() const {
    for (const ProcCgroup& c : cgroups_) {
      if (c.hierarchy_id == 0 && c.controllers.empty()) return &c;
    }
    return nullptr;
  }

  std::optional<Hierarchy> Visible(CgroupVersion version, const MountInfo& m,
                                   absl::string_view path,
                                   std::vector<std::string>* notes) const {
    std::optional<std::string> rel = RelativeCgroupPath(m.root, Std(path));
    if (!rel) {
      // The cgroup is outside what this mount shows (another cgroup
      // namespace, or a bind mount of a different subtree): its files and
      // its ancestors' are not visible, so nothing can be said about them.
      AddNote(notes,
              absl::StrFormat(
                  "cgroup %s path %s is not under the root %s of the "
                  "mount at %s; its limits are not visible",
                  CgroupVersionName(version), path, m.root, m.mount_point));
      return std::nullopt;
    }
    return BuildLevels(root_, version, m, *std::move(rel));
  }

  const std::string root_;
  const std::vector<ProcCgroup> cgroups_;
  const std::vector<MountInfo> mounts_;
};

// Reads a limit file. nullopt when it is absent (that level sets nothing) or
// unreadable (noted); an error for any other failure.
absl::StatusOr<std::optional<std::string>> ReadLimitFile(
    const std::string& path, const Level& level,
    std::vector<std::string>* notes) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (text.ok()) return std::optional<std::string>(*std::move(text));
  if (absl::IsNotFound(text.status())) return std::nullopt;
  if (absl::IsPermissionDenied(text.status())) {
    AddNote(notes, absl::StrCat(text.status().message(), " (cgroup ",
                                level.cgroup_path, "): treated as no limit"));
    return std::nullopt;
  }
  return text.status();
}

// Calls parse(level, path, text) for <level>/<name> at each level that has
// the file, leaf first, until parse returns false or an error.
template <typename Parse>
absl::Status ForEachLevel(const Hierarchy& h, absl::string_view name,
                          std::vector<std::string>* notes, Parse parse) {
  for (const Level& level : h.levels) {
    const std::string path = absl::StrCat(level.dir, "/", name);
    absl::StatusOr<std::optional<std::string>> text =
        ReadLimitFile(path, level, notes);
    if (!text.ok()) return text.status();
    if (!text->has_value()) continue;
    absl::StatusOr<bool> more = parse(level, path, **text);
    if (!more.ok()) return more.status();
    if (!*more) break;
  }
  return absl::OkStatus();
}

// v1: cpu.cfs_quota_us, with cpu.cfs_period_us beside it (0 when missing).
absl::StatusOr<CpuQuota> ParseV1Quota(const Level& level,
                                      const std::string& path,
                                      const std::string& text,
                                      std::vector<std::string>* notes) {
  CpuQuota q{CgroupVersion::kV1, level.cgroup_path, kNoLimit, 0};
  absl::StatusOr<int64_t> quota = ParseInt64(path, text);
  if (!quota.ok()) return quota.status();
  q.quota_us = *quota;
  const std::string period_path = level.dir + "/cpu.cfs_period_us";
  absl::StatusOr<std::optional<std::string>> period =
      ReadLimitFile(period_path, level, notes);
  if (!period.ok()) return period.status();
  if (!period->has_value()) {
    AddNote(notes, absl::StrCat("no cpu.cfs_period_us at ", level.cgroup_path));
    return q;
  }
  absl::StatusOr<int64_t> period_us = ParseInt64(period_path, **period);
  if (!period_us.ok()) return period_us.status();
  q.period_us = *period_us;
  return q;
}

// v2: cpu.max.
absl::StatusOr<CpuQuota> ParseV2Quota(const Level& level,
                                      const std::string& path,
                                      const std::string& text,
                                      std::vector<std::string>* notes) {
  absl::StatusOr<CpuMax> max = ParseCpuMax(text);
  if (!max.ok()) return Malformed(path, text, max.status().message());
  if (max->extra_fields) {
    AddNote(notes, absl::StrCat("cpu.max at ", level.cgroup_path,
                                " has extra fields; used the first two"));
  }
  return CpuQuota{CgroupVersion::kV2, level.cgroup_path, max->quota_us,
                  max->period_us};
}

absl::Status ReadCpuQuotas(const Hierarchy& h, SizingInputs* in) {
  const bool v1 = h.version == CgroupVersion::kV1;
  return ForEachLevel(h, v1 ? "cpu.cfs_quota_us" : "cpu.max", &in->notes,
                      [&](const Level& level, const std::string& path,
                          const std::string& text) -> absl::StatusOr<bool> {
                        absl::StatusOr<CpuQuota> q =
                            v1 ? ParseV1Quota(level, path, text, &in->notes)
                               : ParseV2Quota(level, path, text, &in->notes);
                        if (!q.ok()) return q.status();
                        in->cpu_quotas.push_back(*std::move(q));
                        return true;
                      });
}

absl::Status ReadMemoryLimits(const Hierarchy& h, SizingInputs* in) {
  const bool v1 = h.version == CgroupVersion::kV1;
  return ForEachLevel(
      h, v1 ? "memory.limit_in_bytes" : "memory.max", &in->notes,
      [&](const Level& level, const std::string& path,
          const std::string& text) -> absl::StatusOr<bool> {
        MemoryLimit m{h.version, level.cgroup_path, kNoLimit};
        if (v1 || absl::StripAsciiWhitespace(text) != "max") {
          absl::StatusOr<int64_t> bytes = ParseInt64(path, text);
          if (!bytes.ok()) return bytes.status();
          m.limit_bytes = *bytes;
        }
        in->memory_limits.push_back(std::move(m));
        return true;
      });
}

// The nearest cpuset file: the effective list already folds in ancestors.
absl::Status ReadCpuset(const Hierarchy& h, SizingInputs* in) {
  const bool v1 = h.version == CgroupVersion::kV1;
  return ForEachLevel(
      h, v1 ? "cpuset.effective_cpus" : "cpuset.cpus.effective", &in->notes,
      [&](const Level& level, const std::string& path,
          const std::string& text) -> absl::StatusOr<bool> {
        absl::StatusOr<int> count = CountCpuList(text);
        if (!count.ok()) return Malformed(path, text, count.status().message());
        if (*count == 0) return true;  // empty here: look further up
        in->cpuset =
            Cpuset{h.version, level.cgroup_path,
                   std::string(absl::StripAsciiWhitespace(text)), *count};
        return false;
      });
}

// CPU numbers from 0 to kMaxCpus - 1 are accepted in a CPU list.
constexpr int64_t kMaxCpus = int64_t{1} << 22;

struct CpuRange {
  int64_t first;
  int64_t last;
};

absl::StatusOr<CpuRange> ParseCpuRange(absl::string_view token) {
  const std::vector<absl::string_view> ends = absl::StrSplit(token, '-');
  CpuRange r{0, 0};
  if (ends.size() > 2 || !absl::SimpleAtoi(ends[0], &r.first) ||
      (ends.size() == 2 && !absl::SimpleAtoi(ends[1], &r.last))) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", token, "\" is not a CPU or a range of CPUs"));
  }
  if (ends.size() == 1) r.last = r.first;
  if (r.first < 0 || r.last < r.first) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", token, "\" is not a valid range of CPUs"));
  }
  // No kernel numbers CPUs this high (NR_CPUS is at most 1 << 13 today);
  // the bound also keeps the counting below from overflowing.
  if (r.last >= kMaxCpus) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", token, "\" names a CPU above ", kMaxCpus - 1));
  }
  return r;
}

}  // namespace

absl::StatusOr<int> SchedAffinityCount() {
  // A fixed cpu_set_t holds 1024 CPUs; the kernel refuses (EINVAL) a mask
  // smaller than its own, so grow until it fits.
  for (int cpus = 1024; cpus <= (1 << 22); cpus *= 2) {
    auto free_set = [](cpu_set_t* set) { CPU_FREE(set); };
    std::unique_ptr<cpu_set_t, decltype(free_set)> set(CPU_ALLOC(cpus),
                                                       free_set);
    if (set == nullptr) return absl::ResourceExhaustedError("CPU_ALLOC");
    const size_t size = CPU_ALLOC_SIZE(cpus);
    if (sched_getaffinity(0, size, set.get()) == 0) {
      return CPU_COUNT_S(size, set.get());
    }
    if (errno != EINVAL) return ErrnoStatus(errno, "sched_getaffinity");
  }
  return absl::InternalError("sched_getaffinity: CPU mask larger than 4M CPUs");
}

ProcCgroupReader::ProcCgroupReader(std::string root, AffinityFn affinity)
    : root_(std::move(root)), affinity_(std::move(affinity)) {}

absl::StatusOr<SizingInputs> ProcCgroupReader::Read() {
  SizingInputs in;
  absl::StatusOr<int> affinity = affinity_();
  if (!affinity.ok()) return affinity.status();
  in.affinity_cpus = *affinity;

  const std::string cgroup_path = root_ + "/proc/self/cgroup";
  const std::string mountinfo_path = root_ + "/proc/self/mountinfo";
  absl::StatusOr<std::string> cgroup_text = ReadFile(cgroup_path);
  absl::StatusOr<std::string> mountinfo_text = ReadFile(mountinfo_path);
  if (absl::IsNotFound(cgroup_text.status())) {
    in.notes.push_back("no /proc/self/cgroup: cgroups are not in use");
    return in;
  }
  if (!cgroup_text.ok()) return cgroup_text.status();
  if (!mountinfo_text.ok()) return mountinfo_text.status();
  absl::StatusOr<std::vector<ProcCgroup>> cgroups =
      ParseProcCgroup(*cgroup_text);
  if (!cgroups.ok()) return ParseError(cgroup_path, cgroups.status());
  absl::StatusOr<std::vector<MountInfo>> mounts =
      ParseMountInfo(*mountinfo_text);
  if (!mounts.ok()) return ParseError(mountinfo_path, mounts.status());

  const CgroupMounts view(root_, *std::move(cgroups), *std::move(mounts));
  in.layout = view.Layout();
  if (std::optional<Hierarchy> h = view.Locate("cpu", &in.notes)) {
    if (absl::Status s = ReadCpuQuotas(*h, &in); !s.ok()) return s;
  }
  if (std::optional<Hierarchy> h = view.Locate("cpuset", &in.notes)) {
    if (absl::Status s = ReadCpuset(*h, &in); !s.ok()) return s;
  }
  if (std::optional<Hierarchy> h = view.Locate("memory", &in.notes)) {
    if (absl::Status s = ReadMemoryLimits(*h, &in); !s.ok()) return s;
  }
  return in;
}

std::string UnescapeMountField(std::string_view field_std) {
  const absl::string_view field = Sv(field_std);
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    const bool octal = field[i] == '\\' && i + 3 < field.size();
    if (octal && field[i + 1] >= '0' && field[i + 1] <= '3' &&
        field[i + 2] >= '0' && field[i + 2] <= '7' && field[i + 3] >= '0' &&
        field[i + 3] <= '7') {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 +
                                      (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

absl::StatusOr<std::vector<MountInfo>> ParseMountInfo(
    std::string_view text_std) {
  const absl::string_view text = Sv(text_std);
  std::vector<MountInfo> mounts;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    const std::vector<absl::string_view> fields =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    // id parent major:minor root mount-point options [optional...] - fstype
    // source super-options
    size_t separator = 6;
    while (separator < fields.size() && fields[separator] != "-") ++separator;
    if (separator + 2 >= fields.size()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("line %d has too few fields: \"%s\"", line_number,
                          absl::CEscape(line)));
    }
    MountInfo m;
    m.root = UnescapeMountField(Std(fields[3]));
    m.mount_point = UnescapeMountField(Std(fields[4]));
    m.fs_type = std::string(fields[separator + 1]);
    // Super options may hold spaces (WSL's path=C:\Program Files...).
    const std::vector<absl::string_view> rest(fields.begin() + separator + 3,
                                              fields.end());
    m.super_options =
        absl::StrSplit(absl::StrJoin(rest, " "), ',', absl::SkipEmpty());
    mounts.push_back(std::move(m));
  }
  return mounts;
}

absl::StatusOr<std::vector<ProcCgroup>> ParseProcCgroup(
    std::string_view text_std) {
  const absl::string_view text = Sv(text_std);
  std::vector<ProcCgroup> cgroups;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    // Only the first two colons separate fields: the path may hold more.
    const std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::MaxSplits(':', 2));
    ProcCgroup c;
    if (fields.size() != 3 || !absl::SimpleAtoi(fields[0], &c.hierarchy_id)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("line %d is not \"id:controllers:path\": \"%s\"",
                          line_number, absl::CEscape(line)));
    }
    c.controllers = absl::StrSplit(fields[1], ',', absl::SkipEmpty());
    c.path = std::string(fields[2]);
    cgroups.push_back(std::move(c));
  }
  return cgroups;
}

std::optional<std::string> RelativeCgroupPath(std::string_view root_std,
                                              std::string_view path_std) {
  const absl::string_view mount_root = Sv(root_std);
  absl::string_view path = Sv(path_std);
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return std::nullopt;
  }
  for (absl::string_view part : absl::StrSplit(mount_root, '/')) {
    if (part == "..") return std::nullopt;
  }
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (!absl::StartsWith(path, "/")) return std::nullopt;
  if (mount_root == "/") return path == "/" ? "" : std::string(path);
  if (path == mount_root) return "";
  if (absl::StartsWith(path, mount_root) && path[mount_root.size()] == '/') {
    return std::string(path.substr(mount_root.size()));
  }
  return std::nullopt;
}

absl::StatusOr<int> CountCpuList(std::string_view list_std) {
  absl::string_view list = Sv(list_std);
  list = absl::StripAsciiWhitespace(list);
  if (list.empty()) return 0;
  std::vector<CpuRange> ranges;
  for (absl::string_view token : absl::StrSplit(list, ',')) {
    absl::StatusOr<CpuRange> r = ParseCpuRange(token);
    if (!r.ok()) return r.status();
    ranges.push_back(*r);
  }
  // Count each CPU once even if ranges overlap.
  std::sort(
      ranges.begin(), ranges.end(),
      [](const CpuRange& a, const CpuRange& b) { return a.first < b.first; });
  int64_t count = 0;
  int64_t next = 0;  // first CPU not yet counted
  for (const CpuRange& r : ranges) {
    const int64_t first = std::max(r.first, next);
    if (r.last >= first) count += r.last - first + 1;
    next = std::max(next, r.last + 1);
  }
  return static_cast<int>(count);  // <= kMaxCpus: each CPU once
}

absl::StatusOr<CpuMax> ParseCpuMax(std::string_view text_std) {
  const absl::string_view text = Sv(text_std);
  const std::vector<absl::string_view> fields =
      absl::StrSplit(text, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  if (fields.empty()) return absl::InvalidArgumentError("empty");
  CpuMax max;
  if (fields[0] != "max" && !absl::SimpleAtoi(fields[0], &max.quota_us)) {
    return absl::InvalidArgumentError(
        absl::StrCat("quota \"", fields[0], "\" is not a number or max"));
  }
  max.period_us = kDefaultPeriodUs;
  if (fields.size() >= 2 && !absl::SimpleAtoi(fields[1], &max.period_us)) {
    return absl::InvalidArgumentError(
        absl::StrCat("period \"", fields[1], "\" is not a number"));
  }
  max.extra_fields = fields.size() > 2;
  return max;
}

}  // namespace corral::agent
