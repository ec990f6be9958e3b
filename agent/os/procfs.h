// Reading /proc: the process tree, for attributing notify messages and for
// finding descendants at shutdown.
#ifndef CORRAL_AGENT_OS_PROCFS_H_
#define CORRAL_AGENT_OS_PROCFS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace corral::agent {

struct ProcStat {
  pid_t pid = 0;
  char state = '?';
  pid_t ppid = 0;
  pid_t pgid = 0;
  unsigned long long utime_ticks = 0;
  unsigned long long stime_ticks = 0;
  long rss_pages = 0;
};

// Parses /proc/<pid>/stat (the comm field may hold spaces and ')').
std::optional<ProcStat> ReadProcStat(pid_t pid);
std::optional<ProcStat> ParseProcStat(const std::string& text);

// True when /proc shows this process's own pid namespace (its /proc/self is
// getpid()). A /proc from another namespace must not be used to find
// processes to signal.
bool ProcMatchesNamespace();

// CPU time and resident memory of one process (its own, not its
// children's), from /proc/<pid>/stat; nullopt when it cannot be read.
struct ProcessUsage {
  double cpu_seconds = 0;  // user + system since it started
  int64_t rss_bytes = 0;
};
std::optional<ProcessUsage> ReadProcessUsage(pid_t pid);

// What `corralctl describe` shows of a process beyond its usage: the names
// (never the values: they may hold secrets) of the environment it started
// with, its open file descriptors, its working directory and executable.
// Fields it cannot read stay empty / -1.
struct ProcessFacts {
  std::vector<std::string> env_names;  // in /proc/<pid>/environ order
  int open_fds = -1;
  std::string cwd;
  std::string exe;
};
ProcessFacts ReadProcessFacts(pid_t pid);
// The names in an environ block ("A=1\0B=2\0" -> A, B).
std::vector<std::string> EnvironNames(const std::string& block);

// Every process in /proc that descends from `root`.
std::vector<ProcStat> Descendants(pid_t root);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_PROCFS_H_
