#include "agent/rpc/grpc_status.h"

#include <string>

namespace corral::agent {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl::StatusCode mirrors grpc::StatusCode value for value (both follow
  // google.rpc.Code), so the cast is exact.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

grpc::Status AgentStoppedStatus() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "the agent stopped before it could answer");
}

}  // namespace corral::agent
