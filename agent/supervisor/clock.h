// Time for the supervisor: a monotonic clock behind an interface, so tests
// advance time by hand instead of sleeping.
#ifndef CORRAL_AGENT_SUPERVISOR_CLOCK_H_
#define CORRAL_AGENT_SUPERVISOR_CLOCK_H_

#include <chrono>

namespace corral::agent {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;

// A monotonic clock. Never the wall clock: durations and deadlines must not
// jump when the system time is set.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

// Milliseconds as a double, for events and logs.
inline double ToMillis(Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_CLOCK_H_
