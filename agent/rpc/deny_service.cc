#include "agent/rpc/deny_service.h"

#include <utility>

namespace corral::agent {
namespace {

class DenyReactor final : public grpc::ServerGenericBidiReactor {
 public:
  explicit DenyReactor(const std::string& message) {
    Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, message));
  }
  void OnDone() override { delete this; }
};

}  // namespace

DenyAllService::DenyAllService(std::string message)
    : message_(std::move(message)) {}

grpc::ServerGenericBidiReactor* DenyAllService::CreateReactor(
    grpc::GenericCallbackServerContext*) {
  return new DenyReactor(message_);
}

}  // namespace corral::agent
