// Defaults of the supervisor timings that the agent's flags set. Options{}
// (agent/options.h, which feeds the flags and the --help text) and
// SupervisorConfig{} both start from these, so a config built without flags
// (a test, a future embedding) behaves as the documented defaults say.
#ifndef CORRAL_AGENT_SUPERVISOR_DEFAULTS_H_
#define CORRAL_AGENT_SUPERVISOR_DEFAULTS_H_

#include <chrono>

#include "agent/supervisor/clock.h"

namespace corral::agent {

// --ready-timeout: STARTING longer than this is a failure.
inline constexpr Duration kDefaultReadyTimeout = std::chrono::seconds(60);
// --stop-timeout: SIGTERM to SIGKILL. With --drain-delay it fits
// Kubernetes' 30 s terminationGracePeriodSeconds.
inline constexpr Duration kDefaultStopTimeout = std::chrono::seconds(20);
// --drain-delay: not ready before the first SIGTERM (endpoint propagation).
inline constexpr Duration kDefaultDrainDelay = std::chrono::seconds(5);
// --watchdog: off.
inline constexpr Duration kDefaultWatchdog = Duration::zero();
// --accept-stall: connections waiting this long on a socket whose READY
// worker takes none turn readiness off. Long enough that a busy worker
// which accepts in bursts never trips it (any accept resets it), short
// enough to beat a Kubernetes readiness probe's default 3 x 10 s.
inline constexpr Duration kDefaultAcceptStall = std::chrono::seconds(5);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_DEFAULTS_H_
