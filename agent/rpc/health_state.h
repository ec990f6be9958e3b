// The health services' serving status, without protobuf or gRPC: the "core
// state" layer of gRPC's own health service. The loop and the heartbeat
// write it; the Health RPC adapter reads and watches it. Thread-safe.
//
// Known services: "liveness", "readiness" and "" (the same as readiness).
// All start NOT_SERVING: nothing is live until the loop first answers.
#ifndef CORRAL_AGENT_RPC_HEALTH_STATE_H_
#define CORRAL_AGENT_RPC_HEALTH_STATE_H_

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace corral::agent {

inline constexpr char kLivenessService[] = "liveness";
inline constexpr char kReadinessService[] = "readiness";

class HealthState {
 public:
  // Called with the service's status: true = SERVING, false = NOT_SERVING,
  // nullopt = no such service.
  using Watcher = std::function<void(std::optional<bool>)>;

  HealthState() = default;
  HealthState(const HealthState&) = delete;
  HealthState& operator=(const HealthState&) = delete;

  void SetLive(bool live);
  // Also sets "" (the default service).
  void SetReady(bool ready);
  // Everything NOT_SERVING for good (the agent is stopping); later Set*
  // calls are ignored.
  void Shutdown();

  // nullopt for an unknown service.
  std::optional<bool> Get(const std::string& service) const;

  // Calls `watcher` now and after every change of `service` until Unwatch.
  // Watchers run with the state's lock held: they must only queue work.
  int Watch(const std::string& service, Watcher watcher);
  void Unwatch(int id);

 private:
  void SetLocked(const std::string& service, bool serving)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, bool> serving_ ABSL_GUARDED_BY(mu_) = {
      {kLivenessService, false}, {kReadinessService, false}, {"", false}};
  int next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<int, std::pair<std::string, Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_HEALTH_STATE_H_
