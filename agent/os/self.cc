#include "agent/os/self.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>

extern char** environ;

namespace corral::agent {

pid_t SelfPid() { return getpid(); }

uid_t EffectiveUid() { return geteuid(); }

std::vector<std::string> InheritedEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    env.emplace_back(*e);
  }
  return env;
}

int AffinityCpuCount() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

}  // namespace corral::agent
