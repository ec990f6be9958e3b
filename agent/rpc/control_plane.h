// The agent's control plane: every listener of docs/control-plane.md and the
// thread behind them.
//
//   control socket   corral.v1.Agent + grpc.health.v1 + server reflection,
//                    for root and the agent's uid (others: PERMISSION_DENIED)
//   probe port       grpc.health.v1 only, for the kubelet
//   http port        /livez /readyz /metrics
//   mTLS port        corral.v1.Agent + health, for remote control
//
// One io thread accepts on the control socket, serves HTTP and runs the
// liveness heartbeat; gRPC runs its own threads. Nothing here touches agent
// state except through AgentControl::Post.
//
// main() builds it with Start() before Agent::Run and calls Stop() after Run
// returns, on the same thread.
#ifndef CORRAL_AGENT_RPC_CONTROL_PLANE_H_
#define CORRAL_AGENT_RPC_CONTROL_PLANE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "agent/core/control.h"
#include "agent/options.h"
#include "agent/supervisor/event.h"

namespace corral::agent {

class ControlPlane {
 public:
  // Opens what the agent's options ask for and starts serving. Fails (the
  // agent should exit 1) when an explicitly configured listener cannot be
  // opened; the default control socket only warns through `log`, so a
  // read-only /run does not stop the agent. `agent`, `options` and `log`
  // must outlive the plane; `log` is used on this thread only.
  static absl::StatusOr<std::unique_ptr<ControlPlane>> Start(
      AgentControl* agent, const Options& options, EventSink* log);
  ControlPlane(const ControlPlane&) = delete;
  ControlPlane& operator=(const ControlPlane&) = delete;
  ~ControlPlane();

  // Finishes every open call (UNAVAILABLE) and stream (OK: the agent is
  // gone), closes every listener and removes the socket file.
  // REQUIRES: Agent::Run returned, so the loop runs no more closures.
  void Stop();

  class Parts;

 private:
  explicit ControlPlane(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_CONTROL_PLANE_H_
