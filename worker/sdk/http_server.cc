#include "worker/sdk/http_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/asio/basic_socket_acceptor.hpp"
#include "boost/asio/generic/stream_protocol.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/error.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/write.hpp"

namespace corral::worker {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using Protocol = asio::generic::stream_protocol;
using AcceptorSocket = asio::basic_socket_acceptor<Protocol>;
using boost::system::error_code;

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

bool IsHttpParseError(const error_code& ec) {
  return ec.category() ==
         http::make_error_code(http::error::bad_method).category();
}

}  // namespace

HttpResponse TextResponse(http::status status, std::string body) {
  HttpResponse res{status, 11};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = std::move(body);
  return res;
}

class Connection;

// While draining, how long a connection that has sent nothing yet may take to
// send its first request (a client that connected just before the drain).
constexpr absl::Duration kFirstRequestGrace = absl::Seconds(1);

// State the server shares with its connections, which may outlive it by a
// few handlers while the io_context unwinds.
struct HttpServerState {
  HttpServerState(asio::io_context& io, HttpHandler h, HttpServerOptions o)
      : io(io), handler(std::move(h)), options(std::move(o)) {}

  void Remove(Connection* c) {
    connections.erase(c);
    MaybeFinishDrain();
  }
  void MaybeFinishDrain() {
    if (!draining || !connections.empty() || !drain_done) return;
    // Posted: the last connection may be in the middle of its own teardown.
    asio::post(io, std::exchange(drain_done, nullptr));
  }

  asio::io_context& io;
  const HttpHandler handler;
  const HttpServerOptions options;
  std::unordered_set<Connection*> connections;
  bool draining = false;
  std::function<void()> drain_done;
  uint64_t requests = 0;
};

// One accepted connection: read a request, hand it to the handler, write the
// answer, repeat while keep-alive holds.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<HttpServerState> shared, Protocol::socket s)
      : shared_(std::move(shared)), socket_(std::move(s)), timer_(shared_->io) {
    shared_->connections.insert(this);
  }
  ~Connection() { shared_->Remove(this); }

  void Start() { ReadRequest(); }

  // Called when the server starts draining.
  void OnDrain() {
    if (state_ != State::kReading) return;  // answers with Connection: close
    if (Idle()) return Close();
    // A fresh connection gets a short while for its first request.
    if (served_ == 0 && buffer_.size() == 0) ArmTimer(kFirstRequestGrace);
  }

  void Close() {
    error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
    state_ = State::kClosed;
  }

 private:
  enum class State { kReading, kHandling, kWriting, kClosed };

  // Between requests with nothing received yet: safe to close on drain.
  // A connection that has not had its first request yet is never idle: its
  // client connected to send one (the kernel queued it for us before the
  // drain), and closing it would fail that request; it gets an answer with
  // Connection: close instead.
  bool Idle() {
    if (served_ == 0) return false;
    if (buffer_.size() > 0 || (parser_ && parser_->got_some())) return false;
    error_code ec;
    // Bytes already in the kernel mean a request is on its way.
    return socket_.available(ec) == 0 && !ec;
  }

  void ArmTimer(absl::Duration d) {
    timer_.expires_after(ToChrono(d));
    timer_.async_wait([weak = weak_from_this()](error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->Close();
    });
  }

  void ReadRequest() {
    state_ = State::kReading;
    if (shared_->draining && Idle()) return Close();
    parser_.emplace();
    parser_->header_limit(shared_->options.header_limit);
    parser_->body_limit(shared_->options.body_limit);
    ArmTimer(shared_->draining && served_ == 0 ? kFirstRequestGrace
             : buffer_.size() > 0              ? shared_->options.io_timeout
                                               : shared_->options.idle_timeout);
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, size_t) {
                       self->OnRead(ec);
                     });
  }

  void OnRead(error_code ec) {
    if (state_ == State::kClosed) return;
    if (ec) return OnReadError(ec);
    request_ = parser_->release();
    parser_.reset();
    keep_alive_ = request_.keep_alive();
    state_ = State::kHandling;
    timer_.cancel();
    ++shared_->requests;
    auto self = shared_from_this();
    shared_->handler(request_, [self, version = request_.version(),
                                head = request_.method() == http::verb::head](
                                   HttpResponse res) mutable {
      self->Write(std::move(res), version, head);
    });
  }

  void OnReadError(error_code ec) {
    if (ec == http::error::header_limit) {
      return Fail(http::status::request_header_fields_too_large,
                  "request header fields too large\n");
    }
    if (ec == http::error::body_limit) {
      return Fail(http::status::payload_too_large, "request body too large\n");
    }
    if (ec == http::error::end_of_stream ||
        ec == http::error::partial_message || !IsHttpParseError(ec)) {
      return Close();  // the peer went away, a timeout, or a socket error
    }
    Fail(http::status::bad_request,
         absl::StrCat("bad request: ", ec.message(), "\n"));
  }

  void Fail(http::status status, std::string body) {
    keep_alive_ = false;
    state_ = State::kHandling;
    Write(TextResponse(status, std::move(body)), 11, false);
  }

  void Write(HttpResponse res, unsigned version, bool head) {
    if (state_ != State::kHandling) return;  // closed meanwhile, or twice
    state_ = State::kWriting;
    res.version(version);
    res.set(http::field::server, shared_->options.server_name);
    // Draining: this answer is the connection's last.
    res.keep_alive(keep_alive_ && !shared_->draining);
    res.prepare_payload();
    if (head) res.body().clear();  // Content-Length stays that of GET
    response_.emplace(std::move(res));
    ArmTimer(shared_->options.io_timeout);
    http::async_write(socket_, *response_,
                      [self = shared_from_this()](error_code ec, size_t) {
                        self->OnWrite(ec);
                      });
  }

  void OnWrite(error_code ec) {
    if (state_ == State::kClosed) return;
    ++served_;
    bool again = !ec && response_->keep_alive();
    response_.reset();
    if (!again) {
      error_code ignored;
      socket_.shutdown(Protocol::socket::shutdown_send, ignored);
      return Close();
    }
    ReadRequest();
  }

  std::shared_ptr<HttpServerState> shared_;
  Protocol::socket socket_;
  asio::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpRequest request_;
  std::optional<HttpResponse> response_;
  bool keep_alive_ = true;
  int served_ = 0;  // responses written on this connection
  State state_ = State::kReading;
};

// Accepts on one listening socket until drained.
class HttpAcceptor : public std::enable_shared_from_this<HttpAcceptor> {
 public:
  HttpAcceptor(std::shared_ptr<HttpServerState> shared, AcceptorSocket acceptor,
               int family)
      : shared_(std::move(shared)),
        acceptor_(std::move(acceptor)),
        retry_(shared_->io),
        tcp_(family == AF_INET || family == AF_INET6) {}

  void Accept() {
    acceptor_.async_accept(
        [self = shared_from_this()](error_code ec, Protocol::socket s) {
          self->OnAccept(ec, std::move(s));
        });
  }

  void Close() {
    error_code ignored;
    retry_.cancel();
    // Closes only our descriptor: the agent's copy keeps the queue open for
    // the other workers.
    acceptor_.close(ignored);
  }

 private:
  void OnAccept(error_code ec, Protocol::socket s) {
    if (!acceptor_.is_open() || ec == asio::error::operation_aborted) return;
    if (ec) {
      // EMFILE and friends: back off briefly instead of spinning.
      retry_.expires_after(std::chrono::milliseconds(50));
      retry_.async_wait([self = shared_from_this()](error_code e) {
        if (!e) self->Accept();
      });
      return;
    }
    if (tcp_) {
      int one = 1;
      setsockopt(s.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one,
                 sizeof(one));
    }
    // Accepted as the drain began: the client is already connected and
    // about to send, so it is served (with Connection: close), not dropped.
    std::make_shared<Connection>(shared_, std::move(s))->Start();
    if (shared_->draining) return;
    // Let a sibling worker woken by the same connection burst run and take
    // the next one (a hint; returns at once when no one else is runnable).
    sched_yield();
    AcceptWhenReady();
  }

  // One connection per wakeup: go back to the reactor before accepting the
  // next. Several workers share one accept queue; a worker that accepted
  // in a loop would take a whole burst of connections while the others
  // sleep. Waiting again lets an idle worker win the next one, so load
  // spreads by who is free (as nginx does with multi_accept off).
  void AcceptWhenReady() {
    acceptor_.async_wait(
        AcceptorSocket::wait_read, [self = shared_from_this()](error_code ec) {
          if (!ec) return self->Accept();
          if (ec != asio::error::operation_aborted) {
            self->OnAccept(ec, Protocol::socket(self->shared_->io));
          }
        });
  }

  std::shared_ptr<HttpServerState> shared_;
  AcceptorSocket acceptor_;
  asio::steady_timer retry_;
  const bool tcp_;
};

HttpServer::HttpServer(asio::io_context& io, HttpHandler handler,
                       HttpServerOptions options)
    : shared_(std::make_shared<HttpServerState>(io, std::move(handler),
                                                std::move(options))) {}

HttpServer::~HttpServer() { Abort(); }

absl::Status HttpServer::Start(const std::vector<Listener>& listeners) {
  for (const Listener& l : listeners) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (getsockname(l.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("listener fd ", l.fd, ": getsockname failed"));
    }
    error_code ec;
    AcceptorSocket acceptor(shared_->io);
    // generic::stream_protocol takes (family, IP protocol), not the type.
    int ip_protocol = addr.ss_family == AF_INET || addr.ss_family == AF_INET6
                          ? IPPROTO_TCP
                          : 0;
    acceptor.assign(Protocol(addr.ss_family, ip_protocol), l.fd, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("listener fd ", l.fd, ": ", ec.message()));
    }
    acceptors_.push_back(std::make_shared<HttpAcceptor>(
        shared_, std::move(acceptor), addr.ss_family));
    acceptors_.back()->Accept();
  }
  return absl::OkStatus();
}

void HttpServer::Drain(std::function<void()> done) {
  shared_->drain_done = std::move(done);
  if (!shared_->draining) {
    shared_->draining = true;
    for (auto& a : acceptors_) a->Close();
    // Copy: Close() may not remove entries now, but be safe.
    std::vector<Connection*> conns(shared_->connections.begin(),
                                   shared_->connections.end());
    for (Connection* c : conns) c->OnDrain();
  }
  shared_->MaybeFinishDrain();
}

void HttpServer::Abort() {
  shared_->draining = true;
  for (auto& a : acceptors_) a->Close();
  std::vector<Connection*> conns(shared_->connections.begin(),
                                 shared_->connections.end());
  for (Connection* c : conns) c->Close();
}

bool HttpServer::draining() const { return shared_->draining; }
size_t HttpServer::connection_count() const {
  return shared_->connections.size();
}
uint64_t HttpServer::requests_served() const { return shared_->requests; }

}  // namespace corral::worker
