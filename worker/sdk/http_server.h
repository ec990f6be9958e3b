// An HTTP/1.1 server with keep-alive on Boost.Beast, built for a worker that
// shares its listening sockets with other processes and must drain cleanly.
//
// Drain (on SIGTERM, through Worker): stop accepting (our copy of each
// listening fd is closed; the agent keeps its own, so queued connections wait
// for another worker), close keep-alive connections that sit idle between
// requests, let every request already being read or handled finish with
// `Connection: close`, then report done.
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
};

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
  absl::Status Start(const std::vector<Listener>& listeners);

  // Stops accepting and drains (see the file comment); `done` runs once no
  // connection is left. Calling it again only replaces `done`.
  void Drain(std::function<void()> done);

  // Closes every connection now (after a drain deadline).
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
