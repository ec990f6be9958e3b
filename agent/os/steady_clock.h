// The real monotonic clock.
#ifndef CORRAL_AGENT_OS_STEADY_CLOCK_H_
#define CORRAL_AGENT_OS_STEADY_CLOCK_H_

#include "agent/supervisor/clock.h"

namespace corral::agent {

class SteadyClock : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_STEADY_CLOCK_H_
