// corralctl's connection to an agent, and how failures become messages and
// exit codes a script can rely on.
#ifndef CORRAL_CTL_CLIENT_H_
#define CORRAL_CTL_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "corral/v1/agent.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace corral::ctl {

// corralctl's exit status.
enum ExitCode : int {
  kOk = 0,
  kFailed = 1,       // the agent answered with an error, or the check failed
  kUsage = 2,        // bad command line (or an argument the agent refused)
  kUnreachable = 3,  // no agent answers at that address
};

inline constexpr char kDefaultSocket[] = "/run/corral/agent.sock";

// Global settings from the command line.
struct Settings {
  std::string socket = kDefaultSocket;       // --socket, CORRAL_SOCKET
  bool json = false;                         // -o json
  std::chrono::milliseconds timeout{10000};  // --timeout, unary calls
};

class Connection {
 public:
  // The agent's control socket.
  explicit Connection(const Settings& settings);
  // A TCP address (HOST:PORT), e.g. a probe port: health only.
  Connection(const Settings& settings, const std::string& tcp_address);

  corral::v1::Agent::Stub& agent() { return *agent_; }
  grpc::health::v1::Health::Stub& health() { return *health_; }
  const Settings& settings() const { return settings_; }

  // A context with the unary deadline (or none, for streams that last).
  std::unique_ptr<grpc::ClientContext> Context(bool deadline = true) const;

  // Prints what went wrong with `what` (e.g. "scale") and what to try, on
  // stderr; returns the exit code for it.
  int Fail(const std::string& what, const grpc::Status& status) const;

 private:
  // Why nothing answers at the socket, from a plain connect(2).
  std::string Unreachable() const;

  const Settings settings_;
  const std::string address_;  // for messages
  const bool unix_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<corral::v1::Agent::Stub> agent_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// For errors found before any call: "corralctl: <message>" on stderr.
int Complain(int code, const std::string& message);

}  // namespace corral::ctl

#endif  // CORRAL_CTL_CLIENT_H_
