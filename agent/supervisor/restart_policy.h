// When to restart a worker that failed: the first restart at once, then
// exponential backoff with jitter, capped.
#ifndef CORRAL_AGENT_SUPERVISOR_RESTART_POLICY_H_
#define CORRAL_AGENT_SUPERVISOR_RESTART_POLICY_H_

#include <functional>

#include "agent/supervisor/clock.h"

namespace corral::agent {

struct BackoffOptions {
  Duration min = std::chrono::milliseconds(100);  // second restart's delay
  Duration max = std::chrono::seconds(30);        // cap
  double jitter = 0.2;                            // +-20%
};

// Returns the delay before restart number `consecutive_failures` (1-based).
// `unit_random` returns a uniform number in [0, 1).
Duration RestartDelay(int consecutive_failures, const BackoffOptions& options,
                      const std::function<double()>& unit_random);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_RESTART_POLICY_H_
