// A real corral-agent for the control-plane tests: started in its own temp
// directory with a control socket there, reached through a real gRPC
// channel, and cleaned up (by pid, never by name) even when a test fails.
#ifndef CORRAL_TESTS_RPC_AGENT_PROCESS_H_
#define CORRAL_TESTS_RPC_AGENT_PROCESS_H_

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "corral/v1/agent.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace corral::testing {

// The agent flags the RPC tests share (2 fast-starting workers, short
// drain and stop), followed by `extra`.
std::vector<std::string> TestAgentFlags(std::vector<std::string> extra = {});

// Polls `ready` until it returns true or `timeout` passes.
bool WaitFor(const std::function<bool()>& ready,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A channel that reconnects quickly (tests start agents all the time).
std::shared_ptr<grpc::Channel> Channel(const std::string& target);

// A loopback TCP port nobody listens on right now.
int FreePort();

// A directory under /tmp removed with everything in it when this goes.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class AgentProcess {
 public:
  // A shell worker: prints a line at start, "worker N got USR1" on SIGUSR1,
  // exits 0 on SIGTERM, and exits 3 at start when generation > 1 and the
  // file fail-new exists in the agent's directory (a replacement that never
  // gets ready).
  static std::vector<std::string> ShellWorker();

  // Starts the agent with `flags` (a --control-socket in the temp dir is
  // added unless `flags` has one) and `command`; waits until the control
  // socket answers GetStatus. nullptr (with the agent's log on stderr) if
  // it does not come up.
  static std::unique_ptr<AgentProcess> Start(std::vector<std::string> flags,
                                             std::vector<std::string> command);
  // Only starts the process (for agents expected to fail).
  static std::unique_ptr<AgentProcess> Launch(std::vector<std::string> flags,
                                              std::vector<std::string> command);
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;
  // SIGTERM, then SIGKILL after 10 s; removes the temp dir.
  ~AgentProcess();

  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }
  const std::string& socket() const { return socket_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  corral::v1::Agent::Stub& agent() { return *agent_; }
  grpc::health::v1::Health::Stub& health() { return *health_; }

  // A context with a 10 s deadline.
  static std::unique_ptr<grpc::ClientContext> Context();
  corral::v1::GetStatusResponse Status();
  // Waits until `count` workers are READY and the agent is running.
  bool WaitReady(int count);
  // The agent's stdout and stderr so far.
  std::string Log() const;
  // Waits for the agent to exit; its exit status, or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  void Signal(int sig);
  // A new channel to the socket (the old one may be backing off).
  void Connect();

 private:
  AgentProcess(std::string dir, pid_t pid, std::string socket);

  const std::string dir_;
  pid_t pid_;
  const std::string socket_;
  bool exited_ = false;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<corral::v1::Agent::Stub> agent_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace corral::testing

#endif  // CORRAL_TESTS_RPC_AGENT_PROCESS_H_
