// When to restart a worker that failed. Pure functions of the failure and of
// the other slots; docs/restart-policy.md explains the choices.
//
// A failure is either a crash (the app's own start-up failure or an early
// crash: these back off exponentially, on every slot if every slot crashes,
// as CrashLoopBackOff does) or external (a SIGKILL the agent did not send, as
// from the OOM killer or `kill -9`, or a worker that had served for a while):
// the first few of those restart at once, and a capacity guard keeps most
// slots out of long backoff, so a kill storm cannot take every slot down.
#ifndef CORRAL_AGENT_SUPERVISOR_RESTART_POLICY_H_
#define CORRAL_AGENT_SUPERVISOR_RESTART_POLICY_H_

#include <functional>
#include <optional>

#include "agent/supervisor/clock.h"
#include "agent/supervisor/worker.h"

namespace corral::agent {

struct BackoffOptions {
  Duration min = std::chrono::milliseconds(100);  // second restart's delay
  Duration max = std::chrono::seconds(30);        // cap
  double jitter = 0.2;                            // +-20%
};

// How failures are told apart and how much capacity is kept.
struct FailurePolicy {
  // READY at least this long before failing: the app could start and
  // serve, so the failure is not a crash loop (supervisord's startsecs,
  // PM2's min_uptime).
  Duration min_uptime = std::chrono::seconds(1);
  // External failures in a row restarted at once before backoff starts.
  int quick_restarts = 3;
  // After an external failure, at most this share of the slots (rounded
  // down, and never all of them) may wait in long backoff, longer than
  // BackoffOptions::min; beyond it the delay is cut to that minimum.
  double max_backoff_share = 0.5;
};

enum class FailureKind {
  kCrash,     // never READY, or gone within min_uptime of READY
  kExternal,  // killed from outside, or had served at least min_uptime
};

// "crash", "external".
const char* FailureKindName(FailureKind kind);

// What the supervisor knows about a process that failed.
struct FailureFacts {
  ExitStatus status;
  bool signalled_by_agent = false;    // the agent sent it SIGKILL or SIGABRT
  std::optional<Duration> ready_for;  // how long it was READY, if it was
  bool app_ever_ready = false;        // some worker of the agent was READY
};

// A SIGKILL the agent did not send is external only once the app has shown
// it can start: an app that never gets READY looks the same when the OOM
// killer takes it at every start, and must still back off and give up.
FailureKind ClassifyFailure(const FailureFacts& facts,
                            const FailurePolicy& policy);

// Returns the delay before restart number `consecutive_failures` (1-based):
// the first at once, then min * 2^(n-2) with jitter, capped at max.
// `unit_random` returns a uniform number in [0, 1).
Duration RestartDelay(int consecutive_failures, const BackoffOptions& options,
                      const std::function<double()>& unit_random);

struct RestartRequest {
  FailureKind kind = FailureKind::kCrash;
  int consecutive_failures = 1;  // the slot's, this failure included
  int slots = 1;                 // the target worker count
  // Other slots (below the target) whose restart is more than
  // BackoffOptions::min away, or FAILED: out of service.
  int others_in_long_backoff = 0;
};

struct RestartDecision {
  Duration delay = Duration::zero();
  bool capacity_kept = false;  // the guard cut a long delay short
};

// How many slots may wait in long backoff after external failures.
int MaxSlotsInLongBackoff(int slots, const FailurePolicy& policy);

RestartDecision DecideRestart(const RestartRequest& request,
                              const BackoffOptions& backoff,
                              const FailurePolicy& policy,
                              const std::function<double()>& unit_random);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_RESTART_POLICY_H_
