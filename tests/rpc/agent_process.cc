#include "tests/rpc/agent_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace corral::testing {
namespace {

std::string MakeTempDir() {
  // Short: unix socket paths must stay under 108 bytes.
  char tmpl[] = "/tmp/corral-rpc-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  return dir ? dir : "";
}

}  // namespace

std::shared_ptr<grpc::Channel> Channel(const std::string& target) {
  grpc::ChannelArguments args;
  // The agent comes up within milliseconds: retry connecting that fast
  // (gRPC's default first backoff is a second).
  // (The connect timeout stays gRPC's: an agent starting up accepts a
  // little later than its socket file appears.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                   args);
}

TempDir::TempDir() : path_(MakeTempDir()) {}

TempDir::~TempDir() {
  if (!path_.empty()) std::filesystem::remove_all(path_);
}

bool WaitFor(const std::function<bool()>& ready,
             std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ready();
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::vector<std::string> TestAgentFlags(std::vector<std::string> extra) {
  std::vector<std::string> flags = {"--workers=2", "--ready=delay:50ms",
                                    "--drain-delay=100ms", "--stop-timeout=3s",
                                    "--restart-backoff=50ms,1s"};
  flags.insert(flags.end(), extra.begin(), extra.end());
  return flags;
}

std::vector<std::string> AgentProcess::ShellWorker() {
  return {"/bin/sh", "-c",
          "echo \"worker $CORRAL_WORKER_ID gen $CORRAL_WORKER_GENERATION "
          "pid $$ up\"; "
          "if [ -e \"$CORRAL_TEST_DIR/fail-new\" ] && "
          "[ \"$CORRAL_WORKER_GENERATION\" -gt 1 ]; then "
          "echo refusing >&2; exit 3; fi; "
          "trap 'echo \"worker $CORRAL_WORKER_ID got USR1\"' USR1; "
          "trap 'exit 0' TERM; "
          "while :; do sleep 0.2 & wait $!; done"};
}

std::unique_ptr<AgentProcess> AgentProcess::Start(
    std::vector<std::string> flags, std::vector<std::string> command) {
  std::unique_ptr<AgentProcess> agent =
      Launch(std::move(flags), std::move(command));
  if (agent == nullptr) return nullptr;
  // Answered by this agent (not another one on the same path). A channel
  // whose first attempts fail backs off for seconds: a new one each try.
  const bool up = WaitFor([&agent] {
    agent->Connect();
    corral::v1::GetStatusResponse status;
    auto context = Context();
    return agent->agent().GetStatus(context.get(), {}, &status).ok() &&
           status.pid() == agent->pid();
  });
  if (!up) {
    std::fprintf(stderr, "agent did not come up:\n%s\n", agent->Log().c_str());
    return nullptr;
  }
  return agent;
}

std::unique_ptr<AgentProcess> AgentProcess::Launch(
    std::vector<std::string> flags, std::vector<std::string> command) {
  const std::string dir = MakeTempDir();
  if (dir.empty()) return nullptr;
  std::string socket = dir + "/agent.sock";
  bool has_socket = false;
  for (const std::string& f : flags) {
    if (f.rfind("--control-socket=", 0) == 0) {
      has_socket = true;
      socket = f.substr(17);
    }
  }
  std::vector<std::string> args = {CORRAL_AGENT_PATH};
  if (!has_socket) args.push_back("--control-socket=" + socket);
  args.insert(args.end(), flags.begin(), flags.end());
  args.push_back("--");
  args.insert(args.end(), command.begin(), command.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // The worker reads CORRAL_TEST_DIR; everything else is inherited.
  setenv("CORRAL_TEST_DIR", dir.c_str(), 1);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log = dir + "/agent.log";
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc =
      posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    std::filesystem::remove_all(dir);
    return nullptr;
  }
  return std::unique_ptr<AgentProcess>(new AgentProcess(dir, pid, socket));
}

AgentProcess::AgentProcess(std::string dir, pid_t pid, std::string socket)
    : dir_(std::move(dir)), pid_(pid), socket_(std::move(socket)) {
  Connect();
}

void AgentProcess::Connect() {
  channel_ = Channel("unix:" + socket_);
  agent_ = corral::v1::Agent::NewStub(channel_);
  health_ = grpc::health::v1::Health::NewStub(channel_);
}

AgentProcess::~AgentProcess() {
  if (!exited_) {
    kill(pid_, SIGTERM);
    if (!Wait(std::chrono::seconds(10))) {
      std::fprintf(stderr, "agent %d ignored SIGTERM; SIGKILL\n", pid_);
      kill(pid_, SIGKILL);  // its workers get SIGTERM (parent death signal)
      Wait(std::chrono::seconds(5));
    }
  }
  if (getenv("CORRAL_KEEP_LOGS") == nullptr) {
    std::filesystem::remove_all(dir_);
  }
}

std::unique_ptr<grpc::ClientContext> AgentProcess::Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(10));
  return context;
}

corral::v1::GetStatusResponse AgentProcess::Status() {
  corral::v1::GetStatusResponse status;
  auto context = Context();
  agent_->GetStatus(context.get(), {}, &status);
  return status;
}

bool AgentProcess::WaitReady(int count) {
  return WaitFor([this, count] {
    corral::v1::GetStatusResponse s = Status();
    return s.state() == corral::v1::AGENT_STATE_RUNNING &&
           s.ready_workers() == count && !s.reloading();
  });
}

std::string AgentProcess::Log() const {
  std::ifstream in(dir_ + "/agent.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<int> AgentProcess::Wait(std::chrono::milliseconds timeout) {
  if (exited_) return std::nullopt;
  int status = 0;
  std::optional<int> code;
  WaitFor(
      [&] {
        if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
        code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return true;
      },
      timeout);
  if (code) exited_ = true;
  return code;
}

void AgentProcess::Signal(int sig) {
  if (!exited_) kill(pid_, sig);
}

}  // namespace corral::testing
