#include "agent/http/http_server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "agent/http/metrics.h"
#include "agent/os/fd.h"
#include "agent/os/sockets.h"

namespace corral::agent {
namespace http = boost::beast::http;
using boost::asio::ip::tcp;

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds(30);
constexpr char kText[] = "text/plain; charset=utf-8";
constexpr char kPrometheus[] = "text/plain; version=0.0.4; charset=utf-8";

struct Reply {
  http::status status = http::status::ok;
  std::string body;
  const char* content_type = kText;
};

std::string ReadyText(const AgentStatus& s) {
  if (s.mode == AgentMode::kStopping) {
    return "not ready: the agent is shutting down\n";
  }
  if (s.mode == AgentMode::kDraining) {
    return "not ready: drained (corralctl resume)\n";
  }
  return absl::StrFormat("%s: %d of %d workers READY (need %d)\n",
                         s.ready ? "ready" : "not ready", s.ready_workers,
                         s.target_workers, s.min_ready);
}

}  // namespace

class HttpServer::Gate {
 public:
  explicit Gate(boost::asio::io_context* io) : io_(io) {}
  // Any thread.
  void Post(std::function<void()> fn) {
    absl::MutexLock lock(&mu_);
    if (io_ != nullptr) boost::asio::post(*io_, std::move(fn));
  }
  void Close() {
    absl::MutexLock lock(&mu_);
    io_ = nullptr;
  }

 private:
  absl::Mutex mu_;
  boost::asio::io_context* io_ ABSL_GUARDED_BY(mu_);  // null once closed
};

// One connection: read a request, ask the loop, write the answer; again
// while the client keeps the connection alive. io thread only.
class HttpServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, AgentControl* agent, std::shared_ptr<Gate> gate,
          std::shared_ptr<int> open)
      : stream_(std::move(socket)),
        timer_(stream_.get_executor()),
        agent_(agent),
        gate_(std::move(gate)),
        open_(std::move(open)) {
    ++*open_;
  }
  ~Session() { Uncount(); }

  void Read() {
    request_ = {};
    stream_.expires_after(kIdleTimeout);
    http::async_read(
        stream_, buffer_, request_,
        [self = shared_from_this()](boost::beast::error_code ec, size_t) {
          if (ec) return self->Close();
          self->Route();
        });
  }

  void Respond(Reply reply) {
    if (answered_) return;
    answered_ = true;
    timer_.cancel();
    auto response =
        std::make_shared<http::response<http::string_body>>(reply.status, 11);
    response->set(http::field::content_type, reply.content_type);
    response->set(http::field::cache_control, "no-store");
    response->keep_alive(request_.keep_alive());
    response->body() = std::move(reply.body);
    response->prepare_payload();
    stream_.expires_after(kIdleTimeout);
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](
                          boost::beast::error_code ec, size_t) {
                        if (ec || !response->keep_alive()) return self->Close();
                        self->Read();
                      });
  }

  // Shuts the connection down; it is no longer counted against
  // kMaxConnections and goes as soon as its pending read or write fails.
  void Close() {
    boost::beast::error_code ignored;
    timer_.cancel();
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    Uncount();
  }

 private:
  enum class Ask { kLive, kReady, kMetrics };

  void Route() {
    answered_ = false;
    std::string_view target(request_.target().data(), request_.target().size());
    target = target.substr(0, target.find('?'));
    if (request_.method() != http::verb::get) {
      return Respond({http::status::method_not_allowed, "use GET\n"});
    }
    if (target == "/livez") return AskLoop(Ask::kLive);
    if (target == "/readyz") return AskLoop(Ask::kReady);
    if (target == "/metrics") return AskLoop(Ask::kMetrics);
    Respond({http::status::not_found,
             "not found: corral-agent serves /livez, /readyz and /metrics\n"});
  }

  void AskLoop(Ask ask) {
    timer_.expires_after(kLoopTimeout);
    timer_.async_wait(
        [self = shared_from_this()](boost::system::error_code ec) {
          if (ec) return;
          self->Respond({http::status::service_unavailable,
                         "the agent's loop did not answer within 1s\n"});
        });
    std::weak_ptr<Session> weak = weak_from_this();
    agent_->Post([agent = agent_, gate = gate_, weak, ask] {
      auto deliver = [gate, weak](auto make_reply) {
        gate->Post([weak, make_reply] {
          if (auto self = weak.lock()) self->Respond(make_reply());
        });
      };
      if (ask == Ask::kLive) {
        return deliver([] { return Reply{http::status::ok, "ok\n"}; });
      }
      const AgentStatus status = agent->Status();
      if (ask == Ask::kReady) {
        const bool ready = status.ready;
        std::string text = ReadyText(status);
        return deliver([ready, text] {
          return Reply{
              ready ? http::status::ok : http::status::service_unavailable,
              text};
        });
      }
      // Snapshot on the loop, render on the io thread.
      MetricsSnapshot snapshot = TakeMetricsSnapshot(status);
      deliver([snapshot] {
        return Reply{http::status::ok, RenderPrometheus(snapshot), kPrometheus};
      });
    });
  }

  void Uncount() {
    if (counted_) --*open_;
    counted_ = false;
  }

  boost::beast::tcp_stream stream_;
  boost::asio::steady_timer timer_;
  AgentControl* const agent_;
  const std::shared_ptr<Gate> gate_;
  boost::beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  bool answered_ = false;
  const std::shared_ptr<int> open_;
  bool counted_ = true;
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    AgentControl* agent, boost::asio::io_context* io,
    const std::string& address, int port) {
  // Opened by agent/os, not by Asio, so it is close-on-exec from birth
  // (workers are forked from the loop thread at any moment).
  const absl::Status not_an_ip = absl::InvalidArgumentError(
      absl::StrFormat("--probe-address=%s is not an IP address", address));
  if (address.empty()) return not_an_ip;
  TcpListenOptions options;
  options.numeric_host = true;
  options.nonblocking = true;
  options.backlog = 128;
  absl::StatusOr<TcpListener> l = OpenTcpListener(
      address, port, options,
      absl::StrFormat("--http-port=%d: cannot listen on %s", port, address));
  if (absl::IsInvalidArgument(l.status())) return not_an_ip;
  if (!l.ok()) return l.status();
  std::unique_ptr<HttpServer> server(
      new HttpServer(agent, io, l->fd, l->port, l->v6));
  server->Accept();
  return server;
}

HttpServer::HttpServer(AgentControl* agent, boost::asio::io_context* io, int fd,
                       int port, bool v6)
    : agent_(agent),
      io_(io),
      port_(port),
      v6_(v6),
      acceptor_(*io, v6 ? tcp::v6() : tcp::v4(), fd),
      retry_(*io),
      gate_(std::make_shared<Gate>(io)) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop() {
  gate_->Close();
  boost::system::error_code ignored;
  retry_.cancel();
  acceptor_.close(ignored);
}

void HttpServer::Accept() {
  acceptor_.async_wait(
      tcp::acceptor::wait_read, [this](boost::system::error_code ec) {
        if (ec) return;  // closed
        for (;;) {
          const Accepted accepted = AcceptConnection(acceptor_.native_handle());
          if (accepted.kind == Accepted::Kind::kNone) break;
          if (accepted.kind == Accepted::Kind::kBackOff) {
            // Out of fds or memory: back off instead of spinning on a
            // readable listener; connections wait in the backlog.
            retry_.expires_after(std::chrono::milliseconds(100));
            retry_.async_wait([this](boost::system::error_code retry_ec) {
              if (!retry_ec) Accept();
            });
            return;
          }
          tcp::socket connection(*io_);
          boost::system::error_code assign_ec;
          connection.assign(v6_ ? tcp::v6() : tcp::v4(), accepted.fd,
                            assign_ec);
          if (assign_ec) {
            CloseFd(accepted.fd);
            continue;
          }
          MakeRoom();
          auto session = std::make_shared<Session>(std::move(connection),
                                                   agent_, gate_, open_);
          sessions_.push_back(session);
          session->Read();
        }
        Accept();
      });
}

void HttpServer::MakeRoom() {
  while (*open_ >= kMaxConnections && !sessions_.empty()) {
    std::shared_ptr<Session> oldest = sessions_.front().lock();
    sessions_.pop_front();
    if (oldest) oldest->Close();
  }
  // Forget connections that are gone, so the queue stays near the open count.
  if (sessions_.size() > static_cast<size_t>(2 * kMaxConnections)) {
    std::erase_if(sessions_,
                  [](const std::weak_ptr<Session>& w) { return w.expired(); });
  }
}

}  // namespace corral::agent
