#include "agent/supervisor/restart_policy.h"

#include <algorithm>
#include <cmath>

namespace corral::agent {

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

}  // namespace corral::agent
