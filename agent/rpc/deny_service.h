// Answers every call PERMISSION_DENIED, whatever the service or method: the
// only service of the server that gets control-socket connections from
// peers whose uid may not use the agent. Thread-safe.
#ifndef CORRAL_AGENT_RPC_DENY_SERVICE_H_
#define CORRAL_AGENT_RPC_DENY_SERVICE_H_

#include <grpcpp/generic/async_generic_service.h>

#include <string>

namespace corral::agent {

class DenyAllService final : public grpc::CallbackGenericService {
 public:
  // `message` is what every caller reads.
  explicit DenyAllService(std::string message);

  // grpc::CallbackGenericService
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override;

 private:
  const std::string message_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_DENY_SERVICE_H_
