// HttpServer's graceful drain, against real loopback sockets: what a client
// on a keep-alive connection sees when the server starts draining. The
// server runs on its io_context in a second thread; the test thread is the
// client (RawHttpClient: blocking, bounded waits, no retries).
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "gtest/gtest.h"
#include "tests/sessions/raw_http.h"
#include "worker/sdk/http_server.h"

namespace corral::worker {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;

constexpr absl::Duration kSlowHandler = absl::Milliseconds(300);

// Polls `pred` every 5 ms until it holds or `timeout` passes.
template <typename Pred>
bool WaitUntil(Pred pred, absl::Duration timeout = absl::Seconds(5)) {
  absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

class HttpDrainTest : public ::testing::Test {
 protected:
  ~HttpDrainTest() override {
    if (loop_.joinable()) {
      OnLoop([this] { server_.reset(); });
      work_.reset();
      io_.stop();
      loop_.join();
    }
    if (listen_fd_ >= 0) close(listen_fd_);
  }

  // The server on a fresh loopback listener; the loop is not running yet.
  void MakeServer(HttpServerOptions options = {}) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listen_fd_, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    ASSERT_EQ(listen(listen_fd_, 64), 0);
    ASSERT_EQ(getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len),
              0);
    port_ = ntohs(addr.sin_port);
    server_ = std::make_unique<HttpServer>(
        io_,
        [this](const HttpRequest& req, Respond respond) {
          Handle(req, std::move(respond));
        },
        options);
  }

  // Hands the server a dup of the listener (as the agent's copy stays open,
  // ours does too) and starts accepting.
  void StartAccepting() {
    ASSERT_TRUE(
        server_->Start({Listener{.fd = dup(listen_fd_), .name = "http"}}).ok());
  }

  void RunLoop() {
    loop_ = std::thread([this] { io_.run(); });
  }

  void Serve(HttpServerOptions options = {}) {
    MakeServer(options);
    StartAccepting();
    RunLoop();
  }

  // Runs `f` on the server's loop and waits for it.
  void OnLoop(std::function<void()> f) {
    std::promise<void> ran;
    asio::post(io_, [&] {
      f();
      ran.set_value();
    });
    ran.get_future().wait();
  }

  // Starts the drain; returns when it has begun.
  absl::Time Drain() {
    absl::Time start = absl::Now();
    OnLoop([this] { server_->Drain([this] { drained_ = true; }); });
    return start;
  }

  // "/" answers at once, "/slow" after kSlowHandler.
  void Handle(const HttpRequest& req, Respond respond) {
    ++handling_;
    if (req.target() != "/slow") {
      return respond(TextResponse(http::status::ok, "hello\n"));
    }
    auto timer = std::make_shared<asio::steady_timer>(
        io_, absl::ToChronoNanoseconds(kSlowHandler));
    timer->async_wait([timer, respond](boost::system::error_code) {
      respond(TextResponse(http::status::ok, "slow\n"));
    });
  }

  // A keep-alive connection that has been answered once.
  void ServedOnce(RawHttpClient& c) {
    ASSERT_TRUE(c.Connect(port_).ok());
    ASSERT_TRUE(c.Send(RawGet("/")).ok());
    absl::StatusOr<RawResponse> r = c.Read();
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->connection(), "");  // HTTP/1.1 default: keep-alive
  }

  static void ExpectAnsweredAndClosed(RawHttpClient& c, const char* body) {
    absl::StatusOr<RawResponse> r = c.Read();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, body);
    EXPECT_EQ(r->connection(), "close");
    absl::StatusOr<PeerEnd> end = c.WaitEnd(absl::Seconds(3));
    ASSERT_TRUE(end.ok()) << end.status();
    EXPECT_EQ(*end, PeerEnd::kEof);
  }

  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      work_{asio::make_work_guard(io_)};
  std::thread loop_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::unique_ptr<HttpServer> server_;
  std::atomic<int> handling_{0};
  std::atomic<bool> drained_{false};
};

TEST_F(HttpDrainTest, NextRequestOnAKeepAliveConnectionGetsConnectionClose) {
  Serve();
  RawHttpClient c;
  ServedOnce(c);
  Drain();
  ASSERT_TRUE(c.Send(RawGet("/")).ok());
  ExpectAnsweredAndClosed(c, "hello\n");
  EXPECT_TRUE(WaitUntil([&] { return drained_.load(); }));
}

TEST_F(HttpDrainTest, IdleConnectionIsClosedAfterTheWindowNotBefore) {
  const absl::Duration window = absl::Milliseconds(600);
  Serve({.drain_idle_window = window});
  RawHttpClient c;
  ServedOnce(c);
  absl::Time start = Drain();
  // Half the window: still open, and the drain still waits for it.
  absl::StatusOr<PeerEnd> end = c.WaitEnd(window / 2);
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(*end, PeerEnd::kOpen);
  EXPECT_FALSE(drained_);
  end = c.WaitEnd(absl::Seconds(3));
  absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(*end, PeerEnd::kEof);
  EXPECT_GE(took, window);
  EXPECT_LT(took, window + absl::Seconds(2));
  EXPECT_TRUE(WaitUntil([&] { return drained_.load(); }));
}

TEST_F(HttpDrainTest, RequestLateInTheWindowIsAnswered) {
  const absl::Duration window = absl::Milliseconds(800);
  Serve({.drain_idle_window = window});
  RawHttpClient c;
  ServedOnce(c);
  Drain();
  absl::SleepFor(window / 2);
  ASSERT_TRUE(c.Send(RawGet("/")).ok());
  ExpectAnsweredAndClosed(c, "hello\n");
}

TEST_F(HttpDrainTest, ConnectionThatHasNotSentYetGetsTheWindow) {
  Serve({.drain_idle_window = absl::Milliseconds(800)});
  RawHttpClient c;
  ASSERT_TRUE(c.Connect(port_).ok());
  ASSERT_TRUE(
      WaitUntil([&] { return server_->connection_count() == 1; }));  // accepted
  Drain();
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_TRUE(c.Send(RawGet("/")).ok());
  ExpectAnsweredAndClosed(c, "hello\n");
}

TEST_F(HttpDrainTest, InFlightRequestFinishes) {
  Serve({.drain_idle_window = absl::Milliseconds(50)});
  RawHttpClient c;
  ServedOnce(c);
  ASSERT_TRUE(c.Send(RawGet("/slow")).ok());
  ASSERT_TRUE(WaitUntil([&] { return handling_ == 2; }));
  Drain();
  ExpectAnsweredAndClosed(c, "slow\n");
  EXPECT_TRUE(WaitUntil([&] { return drained_.load(); }));
}

TEST_F(HttpDrainTest, PipelinedRequestsAreAllAnsweredTheLastWithClose) {
  Serve({.drain_idle_window = absl::Milliseconds(50)});
  RawHttpClient c;
  ServedOnce(c);
  ASSERT_TRUE(
      c.Send(RawGet("/slow") + RawGet("/?2") + RawGet("/slow") + RawGet("/?4"))
          .ok());
  ASSERT_TRUE(WaitUntil([&] { return handling_ == 2; }));
  Drain();
  for (const char* body : {"slow\n", "hello\n", "slow\n"}) {
    absl::StatusOr<RawResponse> r = c.Read();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->body, body);
    // Not the last: the connection must stay open for the ones queued.
    EXPECT_EQ(r->connection(), "");
  }
  ExpectAnsweredAndClosed(c, "hello\n");
}

TEST_F(HttpDrainTest, Http10WithoutKeepAliveIsAnsweredAndClosed) {
  Serve();
  RawHttpClient before;
  ASSERT_TRUE(before.Connect(port_).ok());
  ASSERT_TRUE(before.Send(RawGet("/", "1.0")).ok());
  absl::StatusOr<RawResponse> r = before.Read();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, "HTTP/1.0");
  EXPECT_NE(r->connection(), "keep-alive");
  EXPECT_EQ(*before.WaitEnd(absl::Seconds(3)), PeerEnd::kEof);
  before.Close();  // ends the server's linger
  ASSERT_TRUE(WaitUntil([&] { return server_->connection_count() == 0; }));

  RawHttpClient during;
  ASSERT_TRUE(during.Connect(port_).ok());
  ASSERT_TRUE(WaitUntil([&] { return server_->connection_count() == 1; }));
  Drain();
  ASSERT_TRUE(during.Send(RawGet("/", "1.0")).ok());
  ExpectAnsweredAndClosed(during, "hello\n");
}

TEST_F(HttpDrainTest, Http10KeepAliveGetsCloseOnceDraining) {
  Serve();
  RawHttpClient c;
  ASSERT_TRUE(c.Connect(port_).ok());
  const std::string req = RawGet("/", "1.0", "Connection: keep-alive\r\n");
  ASSERT_TRUE(c.Send(req).ok());
  absl::StatusOr<RawResponse> r = c.Read();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, "HTTP/1.0");
  EXPECT_EQ(r->connection(), "keep-alive");
  Drain();
  ASSERT_TRUE(c.Send(req).ok());
  ExpectAnsweredAndClosed(c, "hello\n");
}

// Issue 12 defect 3: the kernel handed the server a connection (the accept
// completed) but its handler runs only after Drain() closed the acceptor.
TEST_F(HttpDrainTest, AcceptCompletedAfterDrainBeganIsServed) {
  MakeServer();
  RawHttpClient c;
  ASSERT_TRUE(c.Connect(port_).ok());  // queued before accepting starts
  ASSERT_TRUE(c.Send(RawGet("/")).ok());
  // Asio accepts speculatively when the accept is started and queues the
  // completion; the drain then runs before the loop gets to it.
  StartAccepting();
  server_->Drain([this] { drained_ = true; });
  RunLoop();
  ExpectAnsweredAndClosed(c, "hello\n");
  EXPECT_TRUE(WaitUntil([&] { return drained_.load(); }));
}

// Connections still in the accept queue when the drain begins are served,
// not left for a close that resets them: here nobody else holds the socket
// (the agent lets go of its copies at shutdown), so they would be lost.
TEST_F(HttpDrainTest, ConnectionsQueuedWhenTheDrainBeginsAreServed) {
  MakeServer();
  StartAccepting();
  close(std::exchange(listen_fd_, -1));  // the worker's copy is the last
  constexpr int kQueued = 10;
  std::vector<std::unique_ptr<RawHttpClient>> clients;
  for (int i = 0; i < kQueued; ++i) {
    clients.push_back(std::make_unique<RawHttpClient>());
    ASSERT_TRUE(clients.back()->Connect(port_).ok());
    ASSERT_TRUE(clients.back()->Send(RawGet("/")).ok());
  }
  // The drain is the first thing the loop runs: at most the speculative
  // accept made when accepting started got one of them.
  asio::post(io_, [this] { server_->Drain([this] { drained_ = true; }); });
  RunLoop();
  for (int i = 0; i < kQueued; ++i) {
    SCOPED_TRACE(i);
    ExpectAnsweredAndClosed(*clients[i], "hello\n");
  }
  EXPECT_TRUE(WaitUntil([&] { return drained_.load(); }));
}

// A close after a response half-closes and reads on: bytes the client sent
// meanwhile are not met with a reset (which can destroy the response the
// client has not read yet).
TEST_F(HttpDrainTest, CloseAfterTheLastResponseIsAFinNotAReset) {
  Serve();
  RawHttpClient c;
  ServedOnce(c);
  Drain();
  ASSERT_TRUE(c.Send(RawGet("/")).ok());
  absl::StatusOr<RawResponse> r = c.Read();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->connection(), "close");
  // A request sent too late (the client had not seen the close yet).
  ASSERT_TRUE(c.Send(RawGet("/late")).ok());
  absl::SleepFor(absl::Milliseconds(100));
  absl::StatusOr<PeerEnd> end = c.WaitEnd(absl::Seconds(3));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(*end, PeerEnd::kEof);
  c.Close();
  EXPECT_TRUE(WaitUntil([&] { return drained_.load(); }));
}

TEST_F(HttpDrainTest, NoConnectionsMeansDrainedAtOnce) {
  Serve();
  Drain();
  EXPECT_TRUE(WaitUntil([&] { return drained_.load(); }, absl::Seconds(1)));
}

TEST(HttpServerOptionsTest, DrainIdleWindowFromEnvironment) {
  unsetenv("CORRAL_DRAIN_IDLE_WINDOW");
  absl::StatusOr<HttpServerOptions> o = HttpServerOptionsFromEnvironment();
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->drain_idle_window, absl::Seconds(1));
  setenv("CORRAL_DRAIN_IDLE_WINDOW", "2500ms", 1);
  o = HttpServerOptionsFromEnvironment({.server_name = "x"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->drain_idle_window, absl::Milliseconds(2500));
  EXPECT_EQ(o->server_name, "x");
  setenv("CORRAL_DRAIN_IDLE_WINDOW", "0", 1);
  EXPECT_EQ(HttpServerOptionsFromEnvironment()->drain_idle_window,
            absl::ZeroDuration());
  for (const char* bad : {"soon", "-1s", "1", ""}) {
    setenv("CORRAL_DRAIN_IDLE_WINDOW", bad, 1);
    o = HttpServerOptionsFromEnvironment();
    ASSERT_FALSE(o.ok()) << bad;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(o.status().message().find("CORRAL_DRAIN_IDLE_WINDOW"),
              std::string::npos)
        << o.status();
  }
  unsetenv("CORRAL_DRAIN_IDLE_WINDOW");
}

}  // namespace
}  // namespace corral::worker
