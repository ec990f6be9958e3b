#include "agent/rpc/health_service.h"

#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "agent/rpc/grpc_status.h"
#include "agent/rpc/stream_reactor.h"
#include "agent/rpc/write_stream.h"

namespace corral::agent {
namespace {

using grpc::health::v1::HealthCheckResponse;

HealthCheckResponse Response(std::optional<bool> serving) {
  HealthCheckResponse r;
  if (!serving) {
    r.set_status(HealthCheckResponse::SERVICE_UNKNOWN);
  } else {
    r.set_status(*serving ? HealthCheckResponse::SERVING
                          : HealthCheckResponse::NOT_SERVING);
  }
  return r;
}

}  // namespace

HealthService::HealthService(HealthState* state, PendingCalls* pending)
    : state_(state), pending_(pending) {}

grpc::ServerUnaryReactor* HealthService::Check(
    grpc::CallbackServerContext* context,
    const grpc::health::v1::HealthCheckRequest* request,
    HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<bool> serving = state_->Get(request->service());
  if (!serving) {
    reactor->Finish(grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrFormat("unknown health service '%s': corral-agent knows "
                        "'liveness', 'readiness' and '' (= readiness)",
                        request->service())));
    return reactor;
  }
  *response = Response(serving);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext*,
    const grpc::health::v1::HealthCheckRequest* request) {
  // One waiting message at most: a newer status replaces an unsent one.
  auto outbox = std::make_shared<StreamOutbox<HealthCheckResponse>>(1);
  auto watch_id = std::make_shared<int>(0);
  const uint64_t id =
      pending_->Add([outbox] { outbox->Close(grpc::Status::OK); });
  HealthState* state = state_;
  PendingCalls* pending = pending_;
  auto* reactor = new StreamReactor<HealthCheckResponse>(
      outbox, [state, pending, id, watch_id] {
        pending->Take(id);
        // Set before the handler returned, and OnDone comes after that.
        state->Unwatch(*watch_id);
      });
  if (id == 0) {
    outbox->Close(AgentStoppedStatus());
    return reactor;
  }
  *watch_id = state_->Watch(
      request->service(),
      [outbox](std::optional<bool> s) { outbox->Push(Response(s)); });
  return reactor;
}

}  // namespace corral::agent
