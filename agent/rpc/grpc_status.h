// absl::Status to grpc::Status, in one place.
#ifndef CORRAL_AGENT_RPC_GRPC_STATUS_H_
#define CORRAL_AGENT_RPC_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace corral::agent {

// The same code (absl's codes are gRPC's) and the same message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// UNAVAILABLE for a call the agent will never answer because it stopped.
grpc::Status AgentStoppedStatus();

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_GRPC_STATUS_H_
