// One closed-loop HTTP/1.1 keep-alive client connection of corral-loadgen:
// it sends a request, waits for the whole response, sends the next one on
// the same connection, and after a failure classifies it, waits
// --retry-delay and connects again.
//
// Every method runs on the thread that runs the io_context it was built
// with (one io_context per client thread); nothing is shared across threads
// but the atomic count of live connections.
#ifndef CORRAL_BENCH_TRAFFIC_CONNECTION_H_
#define CORRAL_BENCH_TRAFFIC_CONNECTION_H_

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "bench/traffic/stats.h"

namespace corral::bench {

// What every connection needs to know; constant after start.
struct ClientConfig {
  boost::asio::ip::tcp::endpoint endpoint;
  std::string request;  // the raw request bytes, sent as they are
  std::chrono::milliseconds timeout{5000};
  std::chrono::milliseconds retry_delay{10};
  double start_s = 0;  // CLOCK_MONOTONIC seconds at the start of the run
  double tick_s = 0.1;
};

// Seconds on CLOCK_MONOTONIC (steady_clock on Linux).
double NowSeconds();

class Connection {
 public:
  Connection(boost::asio::io_context& io, const ClientConfig& config,
             Stats* stats, std::atomic<int>* live);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Start();
  // Drain mode: the endpoint is "removed from the load balancer". Keep
  // using the open connection until the server closes it or a request on
  // it fails, but never connect again.
  void StopReconnecting();

 private:
  using Parser =
      boost::beast::http::response_parser<boost::beast::http::string_body>;

  void Connect();
  void OnConnect(boost::system::error_code ec);
  void SendRequest();
  void OnWrite(boost::system::error_code ec);
  void OnRead(boost::system::error_code ec);
  void OnTimeout(boost::system::error_code ec, int attempt);
  void ArmTimeout();
  void Succeed(bool keep_alive);
  // Records the failure of the current request and reconnects after
  // --retry-delay (or finishes, in drain mode).
  void Fail(FailureKind kind, bool rst, const std::string& detail = "");
  void CloseAndRetry(std::chrono::milliseconds delay);
  void Finish();
  std::string WorkerOf(const Parser::value_type& response) const;

  const ClientConfig& config_;
  Stats* const stats_;
  std::atomic<int>* const live_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timeout_timer_;
  boost::asio::steady_timer retry_timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  int attempt_ = 0;         // tells a stale timeout from the current one
  bool timed_out_ = false;  // the timeout closed the socket
  bool reused_ = false;     // this connection has served a response
  bool draining_ = false;   // StopReconnecting() was called
  bool finished_ = false;
  bool connecting_ = false;  // between Connect() and OnConnect()
  double attempt_start_s_ = 0;
  std::chrono::steady_clock::time_point sent_at_;
  std::string worker_;  // who served this connection
};

}  // namespace corral::bench

#endif  // CORRAL_BENCH_TRAFFIC_CONNECTION_H_
