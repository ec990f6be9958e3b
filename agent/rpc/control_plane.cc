#include "agent/rpc/control_plane.h"

#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_posix.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/http/http_server.h"
#include "agent/os/self.h"
#include "agent/rpc/agent_service.h"
#include "agent/rpc/control_socket.h"
#include "agent/rpc/deny_service.h"
#include "agent/rpc/health_publisher.h"
#include "agent/rpc/health_service.h"
#include "agent/rpc/health_state.h"
#include "agent/rpc/pending_calls.h"
#include "agent/rpc/stream_fanout.h"

namespace corral::agent {
namespace {

// How long Stop() lets calls in flight end before cancelling them.
constexpr auto kShutdownGrace = std::chrono::milliseconds(500);

// Server reflection on the control server only. Linking gRPC's reflection
// library registers its plugin for every server in the process (a static
// initializer), which would put reflection on the probe port too, where only
// health may answer: each builder says whether it wants it.
class ReflectionOption final : public grpc::ServerBuilderOption {
 public:
  explicit ReflectionOption(bool enabled) : enabled_(enabled) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>*
                         plugins) override {
    auto reflection =
        std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>();
    const std::string name = reflection->name();
    std::erase_if(*plugins,
                  [&name](const auto& p) { return p->name() == name; });
    if (enabled_) plugins->push_back(std::move(reflection));
  }

 private:
  const bool enabled_;
};

void CommonOptions(grpc::ServerBuilder* builder, bool reflection) {
  builder->SetOption(std::make_unique<ReflectionOption>(reflection));
  // gRPC sets SO_REUSEPORT by default: a second agent could then share our
  // TCP ports silently instead of failing to start.
  builder->AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
}

absl::StatusOr<std::string> ReadFile(const std::string& flag,
                                     const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in || text.str().empty()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s=%s: cannot read the file (missing, unreadable or empty)", flag,
        path));
  }
  return text.str();
}

// The port to bind for a port option: kAutoPort binds 0 (the kernel picks).
int BindPort(int option) { return option == kAutoPort ? 0 : option; }

std::string PortText(int option) {
  return option == kAutoPort ? "auto" : absl::StrCat(option);
}

std::string HostPort(const std::string& host, int port) {
  return host.find(':') != std::string::npos
             ? absl::StrFormat("[%s]:%d", host, port)
             : absl::StrFormat("%s:%d", host, port);
}

}  // namespace

class ControlPlane::Parts {
 public:
  Parts(AgentControl* agent, const Options& options, EventSink* log)
      : agent_(agent),
        log_(log),
        options_(options),
        streams_(agent, StreamLimits{}),
        agent_service_(agent, &pending_, &streams_, agent->clock().Now()),
        health_service_(&health_, &pending_),
        deny_service_(absl::StrFormat(
            "the control socket only answers root and uid %d (the agent's "
            "user); run corralctl as one of them",
            EffectiveUid())),
        publisher_(agent, &health_, &io_) {}

  absl::Status Open();
  void Stop();

 private:
  absl::Status OpenControlSocket();
  absl::Status StartControlServer();
  absl::Status StartProbeServer();
  void Announce();

  // Constant after construction.
  AgentControl* const agent_;
  EventSink* const log_;
  const Options& options_;

  boost::asio::io_context io_;
  std::optional<
      boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      work_;
  std::thread io_thread_;
  PendingCalls pending_;
  HealthState health_;
  StreamFanout streams_;
  AgentService agent_service_;
  HealthService health_service_;
  DenyAllService deny_service_;
  HealthPublisher publisher_;
  std::unique_ptr<ControlSocket> socket_;
  std::unique_ptr<HttpServer> http_;
  // Declared after the services they serve, so they go first.
  std::unique_ptr<grpc::Server> control_server_;
  std::unique_ptr<grpc::Server> deny_server_;
  std::unique_ptr<grpc::Server> probe_server_;
  int probe_port_ = 0;
  int tls_port_ = 0;
  bool stopped_ = false;
};

absl::Status ControlPlane::Parts::Open() {
  streams_.Start();
  if (absl::Status s = OpenControlSocket(); !s.ok()) return s;
  if (absl::Status s = StartControlServer(); !s.ok()) return s;
  if (absl::Status s = StartProbeServer(); !s.ok()) return s;
  if (options_.http_port != 0) {
    absl::StatusOr<std::unique_ptr<HttpServer>> http = HttpServer::Start(
        agent_, &io_, options_.probe_address, BindPort(options_.http_port));
    if (!http.ok()) return http.status();
    http_ = std::move(*http);
  }
  if (socket_) {
    grpc::Server* allowed = control_server_.get();
    grpc::Server* denied = deny_server_.get();
    // gRPC owns each fd from here and closes it with the connection.
    socket_->Start(
        [allowed](int fd, uid_t) {
          grpc::AddInsecureChannelFromFd(allowed, fd);
        },
        [denied](int fd, uid_t) {
          grpc::AddInsecureChannelFromFd(denied, fd);
        });
  }
  publisher_.Start();
  work_.emplace(io_.get_executor());
  io_thread_ = std::thread([this] { io_.run(); });
  Announce();
  return absl::OkStatus();
}

absl::Status ControlPlane::Parts::OpenControlSocket() {
  if (options_.control_socket.empty()) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<ControlSocket>> socket =
      ControlSocket::Open(options_.control_socket, &io_);
  if (socket.ok()) {
    socket_ = std::move(*socket);
    return absl::OkStatus();
  }
  if (options_.control_socket != Options{}.control_socket) {
    return socket.status();
  }
  // The default path: an agent in a container with a read-only /run still
  // supervises; it says why corralctl will not reach it.
  log_->Emit(Event{
      Level::kWarn,
      "control_socket_unavailable",
      absl::StrCat("no control socket: ", socket.status().message(),
                   "; corralctl cannot reach this agent (set "
                   "--control-socket to a writable path, or to "
                   "'' to turn it off)"),
      {}}.With("socket", options_.control_socket));
  return absl::OkStatus();
}

absl::Status ControlPlane::Parts::StartControlServer() {
  const bool tls = !options_.control_tls_listen.empty();
  if (!socket_ && !tls) return absl::OkStatus();
  grpc::ServerBuilder builder;
  CommonOptions(&builder, /*reflection=*/true);
  builder.RegisterService(&agent_service_);
  builder.RegisterService(&health_service_);
  if (tls) {
    absl::StatusOr<std::string> cert =
        ReadFile("--control-tls-cert", options_.control_tls_cert);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key =
        ReadFile("--control-tls-key", options_.control_tls_key);
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> ca =
        ReadFile("--control-tls-client-ca", options_.control_tls_client_ca);
    if (!ca.ok()) return ca.status();
    // Mutual TLS only: a client without a certificate signed by the
    // client CA does not get past the handshake.
    grpc::SslServerCredentialsOptions ssl(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = *ca;
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    builder.AddListeningPort(options_.control_tls_listen,
                             grpc::SslServerCredentials(ssl), &tls_port_);
  }
  control_server_ = builder.BuildAndStart();
  if (!control_server_ || (tls && tls_port_ == 0)) {
    return absl::UnavailableError(absl::StrFormat(
        "--control-tls-listen=%s: cannot listen there (address in use, or "
        "the certificate and key do not match?)",
        options_.control_tls_listen));
  }
  if (socket_) {
    grpc::ServerBuilder deny;
    CommonOptions(&deny, /*reflection=*/false);
    deny.RegisterCallbackGenericService(&deny_service_);
    deny_server_ = deny.BuildAndStart();
    if (!deny_server_) return absl::InternalError("cannot start gRPC");
  }
  return absl::OkStatus();
}

absl::Status ControlPlane::Parts::StartProbeServer() {
  if (options_.probe_port == 0) return absl::OkStatus();
  const std::string address =
      HostPort(options_.probe_address, BindPort(options_.probe_port));
  grpc::ServerBuilder builder;
  CommonOptions(&builder, /*reflection=*/false);
  // Health and nothing else: every other service is UNIMPLEMENTED here.
  builder.RegisterService(&health_service_);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(),
                           &probe_port_);
  probe_server_ = builder.BuildAndStart();
  if (!probe_server_ || probe_port_ == 0) {
    return absl::UnavailableError(absl::StrFormat(
        "--probe-port=%s: cannot listen on %s (in use by another process?)",
        PortText(options_.probe_port), address));
  }
  return absl::OkStatus();
}

void ControlPlane::Parts::Announce() {
  std::vector<std::string> parts;
  Event e{Level::kInfo, "control_listening", "", {}};
  if (socket_) {
    parts.push_back(absl::StrCat("control socket ", socket_->path()));
    e.With("socket", socket_->path());
  }
  if (probe_server_) {
    parts.push_back(absl::StrCat("probe port ", probe_port_));
    e.With("probe_port", int64_t{probe_port_});
  }
  if (http_) {
    parts.push_back(absl::StrCat("http port ", http_->port()));
    e.With("http_port", int64_t{http_->port()});
  }
  if (tls_port_ > 0) {
    parts.push_back(absl::StrCat("mTLS port ", tls_port_));
    e.With("tls_port", int64_t{tls_port_});
  }
  if (parts.empty()) return;
  e.msg = absl::StrCat("control plane: ", absl::StrJoin(parts, ", "));
  log_->Emit(e);
}

void ControlPlane::Parts::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // Probes and watchers see NOT_SERVING first; then every call waiting for
  // the loop (which runs no more) is finished.
  health_.Shutdown();
  pending_.AbandonAll();
  work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
  publisher_.Stop();
  if (socket_) socket_->Close();
  if (http_) http_->Stop();
  const auto deadline = std::chrono::system_clock::now() + kShutdownGrace;
  for (auto* server : {&control_server_, &deny_server_, &probe_server_}) {
    if (*server) (*server)->Shutdown(deadline);
  }
  control_server_.reset();
  deny_server_.reset();
  probe_server_.reset();
  // Every stream is over: the servers are gone.
  streams_.Stop();
  http_.reset();
  socket_.reset();
}

// --- ControlPlane
// -------------------------------------------------------------

absl::StatusOr<std::unique_ptr<ControlPlane>> ControlPlane::Start(
    AgentControl* agent, const Options& options, EventSink* log) {
  auto parts = std::make_unique<Parts>(agent, options, log);
  if (absl::Status s = parts->Open(); !s.ok()) {
    parts->Stop();
    return s;
  }
  return std::unique_ptr<ControlPlane>(new ControlPlane(std::move(parts)));
}

ControlPlane::ControlPlane(std::unique_ptr<Parts> parts)
    : parts_(std::move(parts)) {}

ControlPlane::~ControlPlane() { Stop(); }

void ControlPlane::Stop() { parts_->Stop(); }

}  // namespace corral::agent
