#include "ctl/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_format.h"

namespace corral::ctl {
namespace {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  grpc::ChannelArguments args;
  // A CLI makes a handful of calls: fail fast instead of retrying a
  // connection for the whole deadline.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 64 << 20);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                   args);
}

}  // namespace

int Complain(int code, const std::string& message) {
  std::fprintf(stderr, "corralctl: %s\n", message.c_str());
  return code;
}

Connection::Connection(const Settings& settings)
    : settings_(settings),
      address_(settings.socket),
      unix_(true),
      channel_(MakeChannel("unix:" + settings.socket)),
      agent_(corral::v1::Agent::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)) {}

Connection::Connection(const Settings& settings, const std::string& tcp_address)
    : settings_(settings),
      address_(tcp_address),
      unix_(false),
      channel_(MakeChannel(tcp_address)),
      agent_(corral::v1::Agent::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> Connection::Context(bool deadline) const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (deadline) {
    context->set_deadline(std::chrono::system_clock::now() + settings_.timeout);
  }
  return context;
}

std::string Connection::Unreachable() const {
  if (!unix_) return "nothing answers there";
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::strerror(errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, address_.c_str(), sizeof(addr.sun_path) - 1);
  const int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  close(fd);
  if (rc == 0) return "";
  switch (err) {
    case ENOENT:
      return "no such file";
    case ECONNREFUSED:
      return "nothing listens there (left over from an agent that died?)";
    case EACCES:
    case EPERM:
      return absl::StrFormat(
          "permission denied (you are uid %d); run corralctl as root or as "
          "the agent's user",
          getuid());
    default:
      return std::strerror(err);
  }
}

int Connection::Fail(const std::string& what,
                     const grpc::Status& status) const {
  const std::string message = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE: {
      std::string why = Unreachable();
      if (why.empty()) {  // it answers now: the agent went away mid-call
        return Complain(kUnreachable,
                        absl::StrFormat("%s: the agent at %s went away: %s",
                                        what, address_, message));
      }
      if (!unix_) {  // health --probe HOST:PORT
        return Complain(
            kUnreachable,
            absl::StrFormat("cannot reach the probe port at %s: %s; is "
                            "corral-agent running with --probe-port (or "
                            "--http-port) on that port?",
                            address_, why));
      }
      const bool denied = why.starts_with("permission denied");
      return Complain(
          kUnreachable,
          absl::StrFormat("cannot reach agent at %s: %s%s", address_, why,
                          denied ? ""
                                 : "; is corral-agent running? set --socket "
                                   "(or CORRAL_SOCKET)"));
    }
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Complain(
          kUnreachable,
          absl::StrFormat("%s: the agent at %s did not answer "
                          "within %.1fs (raise --timeout?)",
                          what, address_, settings_.timeout.count() / 1000.0));
    case grpc::StatusCode::PERMISSION_DENIED:
      return Complain(kFailed, absl::StrFormat("%s: permission denied: %s "
                                               "(you are uid %d)",
                                               what, message, getuid()));
    case grpc::StatusCode::INVALID_ARGUMENT:
      return Complain(kUsage, absl::StrFormat("%s: %s", what, message));
    case grpc::StatusCode::UNIMPLEMENTED:
      return Complain(kFailed,
                      absl::StrFormat("%s: %s does not serve this (a probe "
                                      "port only answers health): %s",
                                      what, address_, message));
    default:
      return Complain(kFailed, absl::StrFormat("%s: %s", what, message));
  }
}

}  // namespace corral::ctl
