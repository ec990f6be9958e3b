#include "agent/os/procfs.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace corral::agent {

std::optional<ProcStat> ParseProcStat(const std::string& text) {
  // "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
  //  majflt cmajflt utime stime cutime cstime priority nice threads
  //  itrealvalue starttime vsize rss ..."
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  // The fields after comm start two bytes after its ')' (a space, then the
  // state): a line that ends sooner is not a stat line.
  if (open == std::string::npos || open == 0 || close == std::string::npos ||
      close < open || close + 2 > text.size()) {
    return std::nullopt;
  }
  ProcStat st;
  if (!absl::SimpleAtoi(text.substr(0, open - 1), &st.pid)) return std::nullopt;
  std::istringstream rest(text.substr(close + 2));
  std::string skip;
  rest >> st.state >> st.ppid >> st.pgid;
  for (int i = 0; i < 8; ++i) rest >> skip;  // session .. cmajflt
  rest >> st.utime_ticks >> st.stime_ticks;
  for (int i = 0; i < 8; ++i) rest >> skip;  // cutime .. vsize
  rest >> st.rss_pages;
  if (rest.fail()) return std::nullopt;
  return st;
}

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return std::nullopt;
  std::string text;
  std::getline(in, text);
  return ParseProcStat(text);
}

std::optional<ProcessUsage> ReadProcessUsage(pid_t pid) {
  static const long ticks_per_second = sysconf(_SC_CLK_TCK);
  static const long page_size = sysconf(_SC_PAGESIZE);
  std::optional<ProcStat> st = ReadProcStat(pid);
  if (!st) return std::nullopt;
  ProcessUsage usage;
  usage.cpu_seconds = static_cast<double>(st->utime_ticks + st->stime_ticks) /
                      static_cast<double>(ticks_per_second);
  usage.rss_bytes = static_cast<int64_t>(st->rss_pages) * page_size;
  return usage;
}

std::vector<std::string> EnvironNames(const std::string& block) {
  std::vector<std::string> names;
  size_t start = 0;
  while (start < block.size()) {
    size_t end = block.find('\0', start);
    if (end == std::string::npos) end = block.size();
    const std::string entry = block.substr(start, end - start);
    const size_t eq = entry.find('=');
    if (eq != std::string::npos && eq > 0) names.push_back(entry.substr(0, eq));
    start = end + 1;
  }
  return names;
}

namespace {

std::string ReadLink(const std::string& path) {
  char buf[4096];
  const ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

ProcessFacts ReadProcessFacts(pid_t pid) {
  ProcessFacts facts;
  const std::string dir = absl::StrCat("/proc/", pid);
  {
    std::ifstream in(dir + "/environ", std::ios::binary);
    if (in) {
      std::ostringstream block;
      block << in.rdbuf();
      facts.env_names = EnvironNames(block.str());
    }
  }
  if (DIR* fds = opendir((dir + "/fd").c_str())) {
    int n = 0;
    while (dirent* entry = readdir(fds)) {
      if (entry->d_name[0] != '.') ++n;
    }
    closedir(fds);
    facts.open_fds = n;
  }
  facts.cwd = ReadLink(dir + "/cwd");
  facts.exe = ReadLink(dir + "/exe");
  return facts;
}

bool ProcMatchesNamespace() {
  char buf[32];
  ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);
  if (n <= 0) return false;
  buf[n] = '\0';
  pid_t pid = 0;
  return absl::SimpleAtoi(buf, &pid) && pid == getpid();
}

std::vector<ProcStat> Descendants(pid_t root) {
  std::map<pid_t, ProcStat> all;
  if (DIR* dir = opendir("/proc")) {
    while (dirent* entry = readdir(dir)) {
      pid_t pid = 0;
      if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
      if (auto st = ReadProcStat(pid)) all[pid] = *st;
    }
    closedir(dir);
  }
  std::vector<ProcStat> out;
  for (const auto& [pid, st] : all) {
    // Walk up; the depth bound guards against a torn read making a cycle.
    pid_t up = st.ppid;
    for (int depth = 0; depth < 64 && up > 0; ++depth) {
      if (up == root) {
        out.push_back(st);
        break;
      }
      auto it = all.find(up);
      if (it == all.end()) break;
      up = it->second.ppid;
    }
  }
  return out;
}

}  // namespace corral::agent
