#include "agent/supervisor/restart_policy.h"

#include <algorithm>
#include <cmath>
#include <csignal>

namespace corral::agent {

const char* FailureKindName(FailureKind kind) {
  return kind == FailureKind::kExternal ? "external" : "crash";
}

FailureKind ClassifyFailure(const FailureFacts& facts,
                            const FailurePolicy& policy) {
  const bool outside_kill =
      facts.status.signal == SIGKILL && !facts.signalled_by_agent;
  if (outside_kill && facts.app_ever_ready) return FailureKind::kExternal;
  if (facts.ready_for && *facts.ready_for >= policy.min_uptime) {
    return FailureKind::kExternal;
  }
  return FailureKind::kCrash;
}

Duration RestartDelay(int consecutive_failures, const BackoffOptions& options,
                      const std::function<double()>& unit_random) {
  if (consecutive_failures <= 1) return Duration::zero();
  // min * 2^(n-2), computed in double so large n cannot overflow.
  double base = static_cast<double>(options.min.count()) *
                std::pow(2.0, std::min(consecutive_failures - 2, 62));
  double capped = std::min(base, static_cast<double>(options.max.count()));
  double factor = 1.0 + options.jitter * (2.0 * unit_random() - 1.0);
  double jittered =
      std::min(capped * factor, static_cast<double>(options.max.count()));
  return Duration(static_cast<Duration::rep>(std::max(jittered, 0.0)));
}

int MaxSlotsInLongBackoff(int slots, const FailurePolicy& policy) {
  const double share = std::clamp(policy.max_backoff_share, 0.0, 1.0);
  const int by_share = static_cast<int>(std::floor(slots * share));
  return std::clamp(by_share, 0, std::max(slots - 1, 0));
}

RestartDecision DecideRestart(const RestartRequest& request,
                              const BackoffOptions& backoff,
                              const FailurePolicy& policy,
                              const std::function<double()>& unit_random) {
  RestartDecision d;
  if (request.kind == FailureKind::kCrash) {
    d.delay = RestartDelay(request.consecutive_failures, backoff, unit_random);
    return d;
  }
  // External: the first quick_restarts at once, then the backoff curve from
  // its second step (min), as if counting started there.
  const int beyond = request.consecutive_failures - policy.quick_restarts;
  d.delay = beyond <= 0 ? Duration::zero()
                        : RestartDelay(beyond + 1, backoff, unit_random);
  if (d.delay > backoff.min &&
      request.others_in_long_backoff >=
          MaxSlotsInLongBackoff(request.slots, policy)) {
    // Backing off here would leave too few slots serving, and waiting does
    // not help against a killer outside: keep the slot.
    d.delay = std::min(d.delay, backoff.min);
    d.capacity_kept = true;
  }
  return d;
}

}  // namespace corral::agent
