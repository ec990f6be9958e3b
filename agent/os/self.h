// Facts about the agent's own process, for code outside agent/os.
#ifndef CORRAL_AGENT_OS_SELF_H_
#define CORRAL_AGENT_OS_SELF_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace corral::agent {

pid_t SelfPid();
uid_t EffectiveUid();

// The environment the agent was started with, "KEY=VALUE" each.
std::vector<std::string> InheritedEnvironment();

// The CPUs this process may run on (sched_getaffinity), at least 1.
int AffinityCpuCount();

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_SELF_H_
