// grpc.health.v1.Health over HealthState: the thin RPC adapter.
//
// Check answers from the published state at once, without a trip through
// the loop, so a busy loop never makes a kubelet probe time out; that the
// loop still answers is itself what "liveness" publishes (HealthPublisher).
// Watch sends the current status, then every change, coalesced: a slow
// client gets the newest status, never a backlog. Thread-safe.
#ifndef CORRAL_AGENT_RPC_HEALTH_SERVICE_H_
#define CORRAL_AGENT_RPC_HEALTH_SERVICE_H_

#include "agent/rpc/health_state.h"
#include "agent/rpc/pending_calls.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace corral::agent {

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  // Both must outlive the servers this service is registered with.
  HealthService(HealthState* state, PendingCalls* pending);
  HealthService(const HealthService&) = delete;
  HealthService& operator=(const HealthService&) = delete;

  // grpc::health::v1::Health::CallbackService
  grpc::ServerUnaryReactor* Check(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request,
      grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  HealthState* const state_;
  PendingCalls* const pending_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_HEALTH_SERVICE_H_
