// /livez, /readyz and /metrics on --http-port (Boost.Beast), for load
// balancers, people with curl, and Prometheus.
//
// It runs on the control io_context's single thread. Every answer comes
// from the agent's loop (AgentControl::Post) and hops back to the io thread;
// an answer the loop does not give within a second is a 503, so /livez also
// tells whether the loop is alive.
#ifndef CORRAL_AGENT_HTTP_HTTP_SERVER_H_
#define CORRAL_AGENT_HTTP_HTTP_SERVER_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/core/control.h"

namespace corral::agent {

class HttpServer {
 public:
  static constexpr auto kLoopTimeout = std::chrono::seconds(1);
  // Open connections at most. One more closes the oldest: a client that
  // opens connections and never finishes a request (slowloris) can neither
  // take the agent's fds nor keep a new probe out.
  static constexpr int kMaxConnections = 128;

  // Binds address:port (fails naming --http-port) and accepts on `io`.
  // `agent` and `io` must outlive this.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      AgentControl* agent, boost::asio::io_context* io,
      const std::string& address, int port);
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();

  // Stops accepting and drops answers still on their way from the loop.
  // REQUIRES: the io_context no longer runs.
  void Stop();
  int port() const { return port_; }

  class Session;
  // Carries loop answers back to the io thread until Stop.
  class Gate;

 private:
  HttpServer(AgentControl* agent, boost::asio::io_context* io, int fd, int port,
             bool v6);
  void Accept();
  // Closes the oldest connections until a new one fits kMaxConnections.
  void MakeRoom();

  AgentControl* const agent_;
  boost::asio::io_context* const io_;
  const int port_;
  const bool v6_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  std::shared_ptr<Gate> gate_;
  // io thread only: connections in accept order (some already gone), and
  // how many are open (a Session counts itself until it closes).
  std::deque<std::weak_ptr<Session>> sessions_;
  const std::shared_ptr<int> open_ = std::make_shared<int>(0);
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_HTTP_HTTP_SERVER_H_
