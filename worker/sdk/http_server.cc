#include "worker/sdk/http_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
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
#include "common/duration.h"

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

// After a connection's last answer (or an idle close), how long to keep
// reading what the client still sends, waiting for its FIN, before closing
// outright. Clients close at once after `Connection: close`; a pool that
// notices a closed socket only when it reuses it costs at most this.
constexpr absl::Duration kLingerTimeout = absl::Milliseconds(500);

// State the server shares with its connections, which may outlive it by a
// few handlers while the io_context unwinds.
struct HttpServerState : std::enable_shared_from_this<HttpServerState> {
  HttpServerState(asio::io_context& io, HttpHandler h, HttpServerOptions o)
      : io(io), handler(std::move(h)), options(std::move(o)) {}

  void Remove(Connection* c) {
    connections.erase(c);
    MaybeFinishDrain();
  }
  void MaybeFinishDrain() {
    if (!draining || !connections.empty() || !drain_done || finish_posted) {
      return;
    }
    finish_posted = true;
    // Posted: the last connection may be in the middle of its own teardown.
    // Checked again when it runs: an accept that completed before the drain
    // may have added a connection meanwhile; its end calls us again.
    asio::post(io, [self = shared_from_this()] {
      self->finish_posted = false;
      if (!self->connections.empty() || !self->drain_done) return;
      std::exchange(self->drain_done, nullptr)();
    });
  }

  asio::io_context& io;
  const HttpHandler handler;
  const HttpServerOptions options;
  std::unordered_set<Connection*> connections;
  bool draining = false;
  bool aborted = false;  // Abort() ran: nothing new is served
  bool finish_posted = false;
  std::function<void()> drain_done;
  uint64_t requests = 0;
};

// One accepted connection: read a request, hand it to the handler, write the
// answer, repeat while keep-alive holds; then half-close and linger.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<HttpServerState> shared, Protocol::socket s)
      : shared_(std::move(shared)), socket_(std::move(s)), timer_(shared_->io) {
    shared_->connections.insert(this);
  }
  ~Connection() { shared_->Remove(this); }

  void Start() { ReadRequest(); }

  // The server started draining. An answer being handled or written, or to
  // a request being read, says close (Write). A connection waiting for its
  // next request gets the drain idle window: its client may be sending it
  // right now, and closing would fail that request.
  void OnDrain() {
    if (state_ == State::kReading && !RequestStarted()) {
      ArmTimer(Wait::kIdle, shared_->options.drain_idle_window);
    }
  }

  // Closes at once (a timeout, an error, Abort()).
  void Close() {
    error_code ignored;
    ++timer_seq_;
    timer_.cancel();
    socket_.close(ignored);
    state_ = State::kClosed;
  }

 private:
  enum class State { kReading, kHandling, kWriting, kLingering, kClosed };
  // What the timer is waiting for.
  enum class Wait { kIdle, kIo, kLinger };

  // A request has begun to arrive: bytes parsed, buffered, or waiting in
  // the kernel (the next request of a pipelining client, or one racing our
  // idle timer).
  bool RequestStarted() {
    if (buffer_.size() > 0 || (parser_ && parser_->got_some())) return true;
    error_code ec;
    return socket_.available(ec) > 0 && !ec;
  }

  void ArmTimer(Wait wait, absl::Duration d) {
    wait_ = wait;
    // The sequence number tells a stale expiry (already queued when the
    // timer was re-armed, so not cancelled) from the current one.
    uint64_t seq = ++timer_seq_;
    timer_.expires_after(ToChrono(d));
    timer_.async_wait([weak = weak_from_this(), seq](error_code ec) {
      if (ec) return;
      auto self = weak.lock();
      if (self && self->timer_seq_ == seq) self->OnTimer();
    });
  }

  void OnTimer() {
    if (state_ == State::kClosed) return;
    if (wait_ != Wait::kIdle) return Close();  // io timeout, linger over
    // A request arrived as the idle wait ended: read it, within io_timeout.
    if (RequestStarted())
      return ArmTimer(Wait::kIo, shared_->options.io_timeout);
    Linger();
  }

  void ReadRequest() {
    state_ = State::kReading;
    parser_.emplace();
    parser_->header_limit(shared_->options.header_limit);
    parser_->body_limit(shared_->options.body_limit);
    if (buffer_.size() > 0) {
      ArmTimer(Wait::kIo, shared_->options.io_timeout);  // pipelined
    } else {
      ArmTimer(Wait::kIdle, shared_->draining
                                ? shared_->options.drain_idle_window
                                : shared_->options.idle_timeout);
    }
    reading_ = true;
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, size_t) {
                       self->reading_ = false;
                       self->OnRead(ec);
                     });
  }

  void OnRead(error_code ec) {
    if (state_ == State::kClosed) return;
    // Half-closed meanwhile: whatever came is dropped.
    if (state_ == State::kLingering) return ec ? Close() : Discard();
    if (ec) return OnReadError(ec);
    request_ = parser_->release();
    parser_.reset();
    keep_alive_ = request_.keep_alive();
    state_ = State::kHandling;
    ++timer_seq_;
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
      return Close();  // the peer went away, or a socket error
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
    // Draining: this answer is the connection's last, unless the client has
    // already sent the next one (pipelined): that is answered too.
    last_ = !keep_alive_ || (shared_->draining && !RequestStarted());
    res.keep_alive(!last_);
    // Said explicitly for HTTP/1.0 too, where close is only the default.
    if (last_) res.set(http::field::connection, "close");
    res.prepare_payload();
    if (head) res.body().clear();  // Content-Length stays that of GET
    response_.emplace(std::move(res));
    ArmTimer(Wait::kIo, shared_->options.io_timeout);
    http::async_write(socket_, *response_,
                      [self = shared_from_this()](error_code ec, size_t) {
                        self->OnWrite(ec);
                      });
  }

  void OnWrite(error_code ec) {
    if (state_ == State::kClosed) return;
    ++served_;
    response_.reset();
    if (ec) return Close();
    if (last_) return Linger();
    ReadRequest();
  }

  // Half-close (FIN after the last answer), then read and drop what the
  // client still sends until it closes too. close() with unread bytes in
  // the kernel sends a reset instead of a FIN, and a reset can destroy an
  // answer the client has not read yet (nginx's lingering close).
  void Linger() {
    state_ = State::kLingering;
    error_code ignored;
    socket_.shutdown(Protocol::socket::shutdown_send, ignored);
    ArmTimer(Wait::kLinger, kLingerTimeout);
    if (!reading_) Discard();  // else OnRead continues here
  }

  void Discard() {
    buffer_.clear();
    reading_ = true;
    socket_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](
                                                       error_code ec, size_t) {
      self->reading_ = false;
      if (self->state_ == State::kClosed) return;
      if (ec) return self->Close();  // the client's FIN, or an error
      self->Discard();
    });
  }

  std::shared_ptr<HttpServerState> shared_;
  Protocol::socket socket_;
  asio::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpRequest request_;
  std::optional<HttpResponse> response_;
  bool keep_alive_ = true;
  bool last_ = false;     // the answer being written closes the connection
  bool reading_ = false;  // a read is pending on socket_
  int served_ = 0;        // responses written on this connection
  uint64_t timer_seq_ = 0;
  Wait wait_ = Wait::kIdle;
  State state_ = State::kReading;
};

// The most connections a drain takes from its socket's queue (SOMAXCONN).
constexpr int kMaxQueuedAtDrain = 4096;

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
    // Serve what is already queued first. With a socket of its own (the
    // agent's per-slot sockets) nobody else would accept these: at
    // shutdown the kernel resets them when the last copy closes, their
    // requests already sent. At most a backlog's worth: what arrives while
    // we take them is accepted too, a flood is not followed forever.
    if (!shared_->aborted && acceptor_.is_open()) {
      acceptor_.non_blocking(true, ignored);
      for (int i = 0; i < kMaxQueuedAtDrain; ++i) {
        Protocol::socket s(shared_->io);
        error_code ec;
        acceptor_.accept(s, ec);
        if (ec) break;  // would_block: the queue is empty
        Serve(std::move(s));
      }
    }
    // Closes only our descriptor: the agent's copy keeps the queue open for
    // the other workers (and, in a reload, for this slot's replacement).
    acceptor_.close(ignored);
  }

 private:
  void OnAccept(error_code ec, Protocol::socket s) {
    if (!ec && s.is_open()) Serve(std::move(s));
    if (!acceptor_.is_open() || ec == asio::error::operation_aborted) return;
    if (ec) {
      // EMFILE and friends: back off briefly instead of spinning.
      retry_.expires_after(std::chrono::milliseconds(50));
      retry_.async_wait([self = shared_from_this()](error_code e) {
        if (!e) self->Accept();
      });
      return;
    }
    // Let a sibling worker woken by the same connection burst run and take
    // the next one (a hint; returns at once when no one else is runnable).
    sched_yield();
    AcceptWhenReady();
  }

  // Served even when the drain closed our acceptor after the kernel had
  // handed us this connection but before this handler ran: its client is
  // connected and about to send, and nobody else can answer it now. It is
  // answered with Connection: close. Only Abort() drops it.
  void Serve(Protocol::socket s) {
    if (shared_->aborted) return;
    if (tcp_) {
      int one = 1;
      setsockopt(s.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one,
                 sizeof(one));
    }
    std::make_shared<Connection>(shared_, std::move(s))->Start();
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

absl::StatusOr<HttpServerOptions> HttpServerOptionsFromEnvironment(
    HttpServerOptions options) {
  const char* value = getenv(kDrainIdleWindowEnv);
  if (value == nullptr) return options;
  // The agent's duration syntax (common/duration.h): one parser for both.
  absl::StatusOr<absl::Duration> d = corral::common::ParseDuration(value);
  if (!d.ok() || *d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kDrainIdleWindowEnv, "=\"", value,
                     "\" is not a duration >= 0 (like 1s or 500ms)",
                     d.ok() ? "" : absl::StrCat(": ", d.status().message())));
  }
  options.drain_idle_window = *d;
  return options;
}

HttpServer::HttpServer(asio::io_context& io, HttpHandler handler,
                       HttpServerOptions options)
    : shared_(std::make_shared<HttpServerState>(io, std::move(handler),
                                                std::move(options))) {}

HttpServer::~HttpServer() { Abort(); }

absl::Status HttpServer::Start(const std::vector<Listener>& listeners) {
  const HttpServerOptions& o = shared_->options;
  if (o.drain_idle_window < absl::ZeroDuration() ||
      o.idle_timeout <= absl::ZeroDuration() ||
      o.io_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("HttpServerOptions: drain_idle_window (",
                     absl::FormatDuration(o.drain_idle_window),
                     ") must be >= 0, "
                     "idle_timeout (",
                     absl::FormatDuration(o.idle_timeout),
                     ") and "
                     "io_timeout (",
                     absl::FormatDuration(o.io_timeout), ") > 0"));
  }
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
    // Copy: the set may change while connections react.
    std::vector<Connection*> conns(shared_->connections.begin(),
                                   shared_->connections.end());
    for (Connection* c : conns) c->OnDrain();
  }
  shared_->MaybeFinishDrain();
}

void HttpServer::Abort() {
  shared_->aborted = true;
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
