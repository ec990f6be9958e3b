#include "bench/traffic/connection.h"

#include <cctype>
#include <utility>

namespace corral::bench {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;

double NowSeconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Connection::Connection(asio::io_context& io, const ClientConfig& config,
                       Stats* stats, std::atomic<int>* live)
    : config_(config),
      stats_(stats),
      live_(live),
      socket_(io),
      timeout_timer_(io),
      retry_timer_(io) {}

void Connection::Start() {
  live_->fetch_add(1);
  Connect();
}

void Connection::StopReconnecting() {
  draining_ = true;
  // Waiting to reconnect: that connection will never be made.
  if (!socket_.is_open() && !connecting_) Finish();
}

void Connection::ArmTimeout() {
  attempt_++;
  timed_out_ = false;
  attempt_start_s_ = NowSeconds();
  timeout_timer_.expires_after(config_.timeout);
  timeout_timer_.async_wait(
      [this, attempt = attempt_](error_code ec) { OnTimeout(ec, attempt); });
}

void Connection::OnTimeout(error_code ec, int attempt) {
  if (ec || attempt != attempt_ || finished_) return;
  timed_out_ = true;
  // Closing makes the pending connect/write/read complete with an error;
  // its handler sees timed_out_ and counts a timeout.
  error_code ignored;
  socket_.close(ignored);
}

void Connection::Connect() {
  if (draining_) return Finish();
  reused_ = false;
  worker_.clear();
  buffer_.clear();
  ArmTimeout();
  connecting_ = true;
  socket_.async_connect(config_.endpoint,
                        [this](error_code ec) { OnConnect(ec); });
}

void Connection::OnConnect(error_code ec) {
  connecting_ = false;
  if (ec) {
    if (timed_out_) return Fail(FailureKind::kTimeout, false);
    if (ec == asio::error::connection_refused) {
      return Fail(FailureKind::kRefused, false);
    }
    if (ec == asio::error::connection_reset) {
      return Fail(FailureKind::kReset, true);
    }
    return Fail(FailureKind::kOther, false, "connect: " + ec.message());
  }
  // Small requests and responses: do not let Nagle hold them back.
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  SendRequest();
}

void Connection::SendRequest() {
  // A fresh connection's timeout started at connect; a reused one's now.
  if (reused_) ArmTimeout();
  parser_.emplace();
  parser_->body_limit(1 << 20);
  sent_at_ = std::chrono::steady_clock::now();
  asio::async_write(socket_, asio::buffer(config_.request),
                    [this](error_code ec, size_t) { OnWrite(ec); });
}

void Connection::OnWrite(error_code ec) {
  if (ec) {
    if (timed_out_) return Fail(FailureKind::kTimeout, false);
    const bool rst =
        ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
    if (rst) {
      return Fail(reused_ ? FailureKind::kEofIdle : FailureKind::kReset, true);
    }
    return Fail(FailureKind::kOther, false, "write: " + ec.message());
  }
  http::async_read(socket_, buffer_, *parser_,
                   [this](error_code ec, size_t) { OnRead(ec); });
}

void Connection::OnRead(error_code ec) {
  if (!ec) {
    timeout_timer_.cancel();
    return Succeed(parser_->get().keep_alive());
  }
  if (timed_out_) return Fail(FailureKind::kTimeout, false);
  const bool got_bytes = parser_->got_some() || buffer_.size() > 0;
  if (ec == http::error::end_of_stream || ec == asio::error::eof) {
    if (got_bytes) return Fail(FailureKind::kEofMid, false);
    return Fail(reused_ ? FailureKind::kEofIdle : FailureKind::kEofNew, false);
  }
  if (ec == http::error::partial_message) {
    return Fail(FailureKind::kEofMid, false);
  }
  if (ec == asio::error::connection_reset) {
    return Fail(
        !got_bytes && reused_ ? FailureKind::kEofIdle : FailureKind::kReset,
        true);
  }
  return Fail(FailureKind::kOther, false, "read: " + ec.message());
}

void Connection::Succeed(bool keep_alive) {
  const auto& response = parser_->get();
  const std::string worker = WorkerOf(response);
  if (worker_.empty() && !worker.empty()) {
    worker_ = worker;
    stats_->workers[worker].connections++;
  }
  const double now = NowSeconds();
  const unsigned status = response.result_int();
  if (status >= 200 && status < 300) {
    stats_->workers[worker].requests++;
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - sent_at_)
                            .count();
    stats_->AddSuccess(now, config_.start_s, config_.tick_s,
                       static_cast<uint64_t>(micros));
  } else {
    stats_->AddFailure({.start_s = attempt_start_s_,
                        .fail_s = now,
                        .kind = FailureKind::kNon2xx,
                        .reused = reused_,
                        .worker = worker_,
                        .detail = std::to_string(status)});
  }
  reused_ = true;
  if (keep_alive) return SendRequest();
  // The server asked us to go ("Connection: close"): not a failure.
  CloseAndRetry(std::chrono::milliseconds(0));
}

void Connection::Fail(FailureKind kind, bool rst, const std::string& detail) {
  stats_->AddFailure({.start_s = attempt_start_s_,
                      .fail_s = NowSeconds(),
                      .kind = kind,
                      .reused = reused_,
                      .rst = rst,
                      .worker = worker_,
                      .detail = detail});
  timeout_timer_.cancel();
  CloseAndRetry(config_.retry_delay);
}

void Connection::CloseAndRetry(std::chrono::milliseconds delay) {
  error_code ignored;
  socket_.close(ignored);
  if (draining_) return Finish();
  if (delay.count() == 0) return Connect();
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([this](error_code ec) {
    if (!ec && !finished_) Connect();
  });
}

void Connection::Finish() {
  if (finished_) return;
  finished_ = true;
  error_code ignored;
  socket_.close(ignored);
  timeout_timer_.cancel();
  retry_timer_.cancel();
  live_->fetch_sub(1);
}

std::string Connection::WorkerOf(const Parser::value_type& response) const {
  // The Node bench app says who it is in a header; corral-worker in its
  // body ("pid":123 on /heavy, "(pid 123)" on /).
  if (auto it = response.find("X-Worker"); it != response.end()) {
    return std::string(it->value());
  }
  const std::string& body = response.body();
  const size_t at = body.find("pid");
  if (at == std::string::npos) return "";
  size_t i = at + 3;
  while (i < body.size() && i < at + 6 && !std::isdigit(body[i])) ++i;
  size_t end = i;
  while (end < body.size() && std::isdigit(body[end])) ++end;
  return body.substr(i, end - i);
}

}  // namespace corral::bench
