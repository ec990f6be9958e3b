// The pure parsers declared in cgroup_reader.h (mountinfo, /proc/self/cgroup,
// cgroup paths, CPU lists, cpu.max): text in, values out, no kernel calls.
// Split from cgroup_reader.cc, which reads the files and walks the
// hierarchies; the tests and the cgroup fuzz target reach these directly.
#include <algorithm>
#include <cstdint>
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
#include "agent/os/cgroup_reader.h"

namespace corral::agent {
namespace {

// v2 cpu.max with one field: the kernel's default period.
constexpr int64_t kDefaultPeriodUs = 100000;

// Debian's Abseil has its own string_view type.
absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }
std::string_view Std(absl::string_view s) { return {s.data(), s.size()}; }

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
