// An HTTP/1.1 server with keep-alive on Boost.Beast, built for a worker that
// shares its listening sockets with other processes and must drain without
// failing a request.
//
// Drain (on SIGTERM, through Worker), the way Envoy and nginx drain
// HTTP/1.1, with a window for idle keep-alive connections:
//  1. Stop accepting: our copy of each listening fd is closed; the agent
//     keeps its own, so queued connections wait for another worker. A
//     connection whose accept had already completed is served.
//  2. Every open connection answers its next request with
//     `Connection: close` and closes after that response. Requests already
//     being read or handled, and requests the client pipelined behind them,
//     are answered first; only the last answer says close.
//  3. A connection with no request in progress stays open for
//     `drain_idle_window` (its client may be sending right now), then is
//     closed. Closing half-closes and reads on until the client closes, so
//     bytes still arriving do not turn the close into a reset.
//  4. `done` runs when the last connection is gone.
// A drain deadline is the caller's (Worker's drain_timeout, then Abort()).
//
// Malformed requests get 400, headers over the limit 431, bodies over the
// limit 413; the connection is closed after such an answer. No request input
// can make the server throw or crash.
//
// Single-threaded: every method, and the handler, runs on the io_context's
// one thread.
#ifndef CORRAL_WORKER_SDK_HTTP_SERVER_H_
#define CORRAL_WORKER_SDK_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "boost/beast/http/message.hpp"
#include "boost/beast/http/string_body.hpp"
#include "worker/sdk/listeners.h"

namespace corral::worker {

using HttpRequest =
    boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse =
    boost::beast::http::response<boost::beast::http::string_body>;

// Completes one request. Call it exactly once, on the loop thread, now or
// later (after a Redis reply, say). Version, keep-alive, Content-Length and
// Server are filled in by the server.
using Respond = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(const HttpRequest&, Respond)>;

struct HttpServerOptions {
  // Request line plus headers larger than this get 431.
  uint32_t header_limit = 8 * 1024;
  // Bodies larger than this get 413.
  uint64_t body_limit = 1024 * 1024;
  // A connection with no request for this long is closed.
  absl::Duration idle_timeout = absl::Seconds(60);
  // Reading one request, or writing one response, may take this long.
  absl::Duration io_timeout = absl::Seconds(30);
  // The Server header.
  std::string server_name = "corral";
  // Draining: how long a keep-alive connection with no request in progress
  // is kept open for its client's next request (answered with Connection:
  // close) before it is closed. 0 closes such connections at once, racing
  // any request already on its way. Environment: CORRAL_DRAIN_IDLE_WINDOW.
  absl::Duration drain_idle_window = absl::Seconds(1);
};

// The environment variable a service sets to change drain_idle_window.
inline constexpr char kDrainIdleWindowEnv[] = "CORRAL_DRAIN_IDLE_WINDOW";

// `options` with CORRAL_DRAIN_IDLE_WINDOW (a duration: "1s", "500ms", "0")
// applied when set. A value that is not a duration >= 0 is an
// InvalidArgument error naming the variable.
absl::StatusOr<HttpServerOptions> HttpServerOptionsFromEnvironment(
    HttpServerOptions options = {});

// A text response with `status`, Content-Type text/plain.
HttpResponse TextResponse(boost::beast::http::status status, std::string body);

struct HttpServerState;  // internal, shared with the connections
class HttpAcceptor;      // internal

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpHandler handler,
             HttpServerOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Starts accepting on each listener; takes ownership of their fds.
  // Options out of range (a negative duration) are an InvalidArgument error.
  absl::Status Start(const std::vector<Listener>& listeners);

  // Stops accepting and drains (see the file comment); `done` runs, posted
  // on the loop, once no connection is left. Calling it again only replaces
  // `done`.
  void Drain(std::function<void()> done);

  // Closes every connection now (after a drain deadline); an accept that
  // completes later is dropped.
  void Abort();

  bool draining() const;
  size_t connection_count() const;
  uint64_t requests_served() const;

 private:
  std::shared_ptr<HttpServerState> shared_;
  std::vector<std::shared_ptr<HttpAcceptor>> acceptors_;
};

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_HTTP_SERVER_H_
