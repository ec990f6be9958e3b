// Fuzzes the bytes an HTTP client sends to a worker on the SDK: the SDK's
// HttpServer (worker/sdk/http_server.h: Boost.Beast's parser with our
// limits, keep-alive, pipelining, error answers and closing) in front of
// the reference worker's handler (worker/corral_worker/app.h: routing,
// query and Cookie parsing, session ids from cookies; Redis is never
// started, so session requests take the 503 path).
//
// Each input is sent on a fresh unix-socket connection to one long-lived
// server, then the client half-closes and reads until the server closes.
// Invariants: the server never crashes or throws; it answers or closes
// within seconds (no connection is left hanging once its client is done);
// whatever it writes starts with an HTTP/1.x status line whose code is not
// 500 (a handler error) and every connection is gone afterwards.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "tests/fuzz/fuzz_check.h"
#include "worker/corral_worker/app.h"
#include "worker/sdk/http_server.h"
#include "worker/sdk/listeners.h"
#include "worker/sdk/redis_client.h"
#include "worker/sdk/session_store.h"

namespace corral::worker {
namespace {

using Clock = std::chrono::steady_clock;

// An abstract unix socket (no file to clean up), unique per process.
sockaddr_un Address(socklen_t* len) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string name = absl::StrCat("corral-http-fuzz-", getpid());
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  *len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return addr;
}

struct Server {
  Server() {
    signal(SIGPIPE, SIG_IGN);
    socklen_t len = 0;
    sockaddr_un addr = Address(&len);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0, "socket");
    FUZZ_CHECK(bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0, "bind");
    FUZZ_CHECK(listen(fd, 16) == 0, "listen");
    HttpServerOptions o;
    o.header_limit = 8 * 1024;
    o.body_limit = 64 * 1024;
    o.idle_timeout = absl::Seconds(2);
    o.io_timeout = absl::Seconds(2);
    server = std::make_unique<HttpServer>(
        io,
        [this](const HttpRequest& req, Respond respond) {
          app.Handle(req, std::move(respond));
        },
        o);
    FUZZ_CHECK(server->Start({Listener{fd, "fuzz", false}}).ok(), "Start");
  }

  boost::asio::io_context io;
  RedisClient redis{io, RedisConfig{}};
  SessionStore sessions{redis, SessionOptions{}};
  ReferenceApp app{redis, sessions,
                   AppOptions{.worker_id = "fuzz", .heavy_max = 1000}};
  std::unique_ptr<HttpServer> server;
};

Server& GetServer() {
  static Server* s = new Server;
  return *s;
}

// Sends `in`, half-closes, reads until EOF. Returns what the server wrote.
std::string Exchange(Server& s, std::string_view in) {
  socklen_t len = 0;
  sockaddr_un addr = Address(&len);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  FUZZ_CHECK(fd >= 0, "client socket");
  FUZZ_CHECK(connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0,
             "connect: ", strerror(errno));
  std::string out;
  size_t sent = 0;
  bool shut = false;
  bool eof = false;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!eof || s.server->connection_count() > 0) {
    FUZZ_CHECK(Clock::now() < deadline, "no answer or close within 10 s; sent ",
               sent, " of ", in.size(), " bytes, got ", fuzz::Shown(out));
    bool progress = false;
    if (sent < in.size()) {
      ssize_t n = send(fd, in.data() + sent, in.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        progress = true;
      } else if (n < 0 && errno != EAGAIN) {
        sent = in.size();  // the server closed early (an error answer)
      }
    } else if (!shut) {
      shutdown(fd, SHUT_WR);
      shut = true;
    }
    if (!eof) {
      char buf[16384];
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        progress = true;
      } else if (n == 0 || (n < 0 && errno != EAGAIN)) {
        eof = true;
        sent = in.size();
      }
    }
    if (s.io.poll() > 0) progress = true;
    if (!progress) s.io.run_one_for(std::chrono::microseconds(500));
  }
  close(fd);
  return out;
}

void Check(std::string_view in) {
  Server& s = GetServer();
  const std::string out = Exchange(s, in);
  if (out.empty()) return;  // closed without an answer (incomplete request)
  // HTTP/1.0 requests get HTTP/1.0 answers.
  FUZZ_CHECK((absl::StartsWith(out, "HTTP/1.1 ") ||
              absl::StartsWith(out, "HTTP/1.0 ")) &&
                 out.size() >= 12 && absl::ascii_isdigit(out[9]) &&
                 absl::ascii_isdigit(out[10]) && absl::ascii_isdigit(out[11]),
             "not a status line: ", fuzz::Shown(out));
  FUZZ_CHECK(out.substr(9, 3) != "500", "a handler error for ", fuzz::Shown(in),
             ": ", fuzz::Shown(out));
}

}  // namespace
}  // namespace corral::worker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  corral::worker::Check(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
