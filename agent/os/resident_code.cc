#include "agent/os/resident_code.h"

#include <sys/mman.h>

#include <cerrno>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "agent/os/errors.h"

namespace corral::agent {
namespace {

struct Mapping {
  uintptr_t begin = 0;
  uintptr_t end = 0;
  std::string perms;
  bool file = false;
  int64_t rss_kib = 0;
  int64_t anon_kib = -1;  // unknown until its line is read
  int64_t swap_kib = -1;  // a private copy may be swapped out
};

// "55f0-55f8 r-xp 00000000 08:01 1234   /usr/lib/libx.so" (path optional).
bool ParseHeader(const std::string& line, Mapping* m) {
  std::vector<absl::string_view> f =
      absl::StrSplit(line, ' ', absl::SkipEmpty());
  if (f.size() < 5) return false;
  std::pair<absl::string_view, absl::string_view> range =
      absl::StrSplit(f[0], absl::MaxSplits('-', 1));
  uint64_t begin = 0, end = 0;
  if (!absl::SimpleHexAtoi(range.first, &begin) ||
      !absl::SimpleHexAtoi(range.second, &end) || f[1].size() != 4) {
    return false;
  }
  m->begin = begin;
  m->end = end;
  m->perms = std::string(f[1]);
  // Pseudo-files ([vdso], [vvar], [heap]) have no leading '/'; a deleted
  // file still has its path.
  m->file = f.size() >= 6 && f[5].front() == '/';
  return true;
}

// "Rss:  1234 kB" -> 1234 for `key` "Rss:".
bool ReadField(const std::string& line, absl::string_view key, int64_t* out) {
  if (!absl::StartsWith(line, key)) return false;
  std::vector<absl::string_view> f =
      absl::StrSplit(line, ' ', absl::SkipEmpty());
  return f.size() >= 2 && absl::SimpleAtoi(f[1], out);
}

// Read-only and private, with every page still the file's own (no private
// copy, resident or swapped out): unmapping loses nothing. Not writable, so
// no thread can add a private copy between the read of smaps and the
// madvise; and the agent never unmaps a file (no dlclose), so the range
// still holds the same file then.
bool Droppable(const Mapping& m) {
  return m.file && m.perms[1] == '-' && m.perms[3] == 'p' && m.anon_kib == 0 &&
         m.swap_kib == 0 && m.rss_kib > 0;
}

}  // namespace

absl::StatusOr<int64_t> DropStartupCodePages() {
  std::ifstream in("/proc/self/smaps");
  if (!in) return absl::UnavailableError("cannot read /proc/self/smaps");
  std::vector<Mapping> maps;
  std::string line;
  while (std::getline(in, line)) {
    Mapping m;
    if (!line.empty() && line[0] != ' ' && ParseHeader(line, &m)) {
      maps.push_back(std::move(m));
      continue;
    }
    if (maps.empty()) continue;
    Mapping& last = maps.back();
    if (ReadField(line, "Rss:", &last.rss_kib)) continue;
    if (ReadField(line, "Anonymous:", &last.anon_kib)) continue;
    ReadField(line, "Swap:", &last.swap_kib);
  }
  int64_t dropped = 0;
  for (const Mapping& m : maps) {
    if (!Droppable(m)) continue;
    // For a private file mapping without private copies, MADV_DONTNEED
    // only removes page-table entries: the next access maps the same page
    // of the page cache again.
    if (madvise(reinterpret_cast<void*>(m.begin), m.end - m.begin,
                MADV_DONTNEED) != 0) {
      return ErrnoStatus(errno, "madvise(MADV_DONTNEED)");
    }
    dropped += m.rss_kib;
  }
  return dropped;
}

}  // namespace corral::agent
