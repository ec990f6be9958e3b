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
#include "agent/os/errors.h"

namespace corral::agent {
namespace {

// Debian's Abseil has its own string_view type.
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

}  // namespace corral::agent
