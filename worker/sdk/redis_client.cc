#include "worker/sdk/redis_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"

namespace corral::worker {
namespace {

// Commands waiting for a connection beyond this many fail at once.
constexpr size_t kMaxWaiting = 10000;

std::string AuthLabel(const std::string& username) {
  return username.empty() ? "AUTH" : absl::StrCat("AUTH as ", username);
}

}  // namespace

const char* RedisStateName(RedisClient::State state) {
  switch (state) {
    case RedisClient::State::kStopped:
      return "stopped";
    case RedisClient::State::kConnecting:
      return "connecting";
    case RedisClient::State::kUp:
      return "up";
    case RedisClient::State::kDown:
      return "down";
  }
  return "?";
}

RedisClient::RedisClient(boost::asio::io_context& io, RedisConfig config)
    : io_(io),
      config_(std::move(config)),
      retry_timer_(io),
      rng_(std::random_device{}()) {}

RedisClient::~RedisClient() { Stop(); }

std::function<bool()> RedisClient::Guard(uint64_t attempt) const {
  return [weak = std::weak_ptr<int>(alive_), this, attempt] {
    return !weak.expired() && attempt_ == attempt && state_ != State::kStopped;
  };
}

void RedisClient::Start() {
  if (state_ != State::kStopped) return;
  Attempt();
}

void RedisClient::Stop() {
  retry_timer_.cancel();
  ++attempt_;  // orphans the callbacks of any attempt in progress
  if (attempt_conn_) attempt_conn_->Close(absl::CancelledError("stopping"));
  if (conn_) conn_->Close(absl::CancelledError("redis client stopped"));
  attempt_conn_.reset();
  conn_.reset();
  FailWaiting(absl::CancelledError("redis client stopped"));
  state_ = State::kStopped;
}

void RedisClient::OnStateChange(StateListener listener) {
  listeners_.push_back(std::move(listener));
}

std::string RedisClient::endpoint() const {
  return conn_ ? conn_->address().ToString() : "";
}

void RedisClient::SetState(State state, const std::string& detail) {
  if (state == state_) return;
  state_ = state;
  for (StateListener& l : listeners_) l(state, detail);
}

void RedisClient::Attempt() {
  ++attempt_;
  SetState(State::kConnecting, "");
  if (config_.sentinel_mode()) {
    AskSentinel(0, "");
  } else {
    ConnectTo(config_.address, /*check_role=*/false);
  }
}

// Sentinel client protocol: ask each sentinel in turn for the master; the
// first that answers moves to the front of the list for next time.
void RedisClient::AskSentinel(size_t index, std::string errors) {
  if (index >= config_.sentinels.size()) {
    return AttemptFailed(absl::UnavailableError(
        absl::StrCat("no sentinel gave the address of master \"",
                     config_.master_name, "\" (", errors, ")")));
  }
  const RedisAddress sentinel = config_.sentinels[index];
  auto conn = RedisConnection::Create(io_, config_.command_timeout);
  attempt_conn_ = conn;
  auto live = Guard(attempt_);
  conn->Connect(sentinel, config_.connect_timeout, [=, this](absl::Status s) {
    if (!live()) return;
    if (!s.ok()) {
      return AskSentinel(
          index + 1,
          absl::StrCat(errors, errors.empty() ? "" : "; ", s.message()));
    }
    if (!config_.sentinel_password.empty()) {
      conn->Send({"AUTH", config_.sentinel_password},
                 [](absl::StatusOr<RedisReply>) {});
    }
    conn->Send({"SENTINEL", "get-master-addr-by-name", config_.master_name},
               [=, this](absl::StatusOr<RedisReply> r) {
                 conn->Close(absl::OkStatus());
                 if (!live()) return;
                 std::string why;
                 int port = 0;
                 if (!r.ok()) {
                   why = std::string(r.status().message());
                 } else if (r->type != RedisReply::Type::kArray ||
                            r->elements.size() != 2 ||
                            !absl::SimpleAtoi(r->elements[1].str, &port)) {
                   why = absl::StrCat("sentinel ", sentinel.ToString(),
                                      " does not know master \"",
                                      config_.master_name, "\"");
                 }
                 if (!why.empty()) {
                   return AskSentinel(
                       index + 1,
                       absl::StrCat(errors, errors.empty() ? "" : "; ", why));
                 }
                 std::rotate(config_.sentinels.begin(),
                             config_.sentinels.begin() + index,
                             config_.sentinels.begin() + index + 1);
                 RedisAddress master;
                 master.host = r->elements[0].str;
                 master.port = port;
                 ConnectTo(master, /*check_role=*/true);
               });
  });
}

void RedisClient::ConnectTo(const RedisAddress& address, bool check_role) {
  auto conn = RedisConnection::Create(io_, config_.command_timeout);
  attempt_conn_ = conn;
  auto live = Guard(attempt_);
  conn->Connect(address, config_.connect_timeout, [=, this](absl::Status s) {
    if (!live()) return;
    if (!s.ok()) return AttemptFailed(s);
    Handshake(conn, check_role);
  });
}

// AUTH, SELECT and (after Sentinel) ROLE, pipelined; up when all succeed.
void RedisClient::Handshake(std::shared_ptr<RedisConnection> conn,
                            bool check_role) {
  struct Progress {
    int remaining = 0;
    absl::Status error;
  };
  auto progress = std::make_shared<Progress>();
  auto live = Guard(attempt_);
  auto step = [=, this](absl::Status s) {
    if (progress->error.ok() && !s.ok()) progress->error = s;
    if (--progress->remaining > 0 || !live()) return;
    if (!progress->error.ok()) {
      conn->Close(progress->error);
      return AttemptFailed(progress->error);
    }
    BecomeUp(conn);
  };
  std::vector<std::pair<std::vector<std::string>, std::string>> commands;
  if (!config_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!config_.username.empty()) auth.push_back(config_.username);
    auth.push_back(config_.password);
    commands.push_back({auth, AuthLabel(config_.username)});
  }
  if (config_.db != 0) {
    commands.push_back({{"SELECT", std::to_string(config_.db)}, "SELECT"});
  }
  if (check_role) commands.push_back({{"ROLE"}, "ROLE"});
  if (commands.empty()) return BecomeUp(conn);
  progress->remaining = static_cast<int>(commands.size());
  const std::string where = conn->address().ToString();
  for (auto& [args, label_ref] : commands) {
    bool is_role = args[0] == "ROLE";
    // A copy: lambdas cannot capture structured bindings before clang 16
    // (the fuzz build uses Debian's clang 14).
    const std::string label = label_ref;
    conn->Send(args, [=](absl::StatusOr<RedisReply> r) {
      if (!r.ok()) {
        return step(absl::UnavailableError(
            absl::StrCat("redis at ", where, ": ", label,
                         " failed: ", r.status().message())));
      }
      if (is_role && (r->elements.empty() || r->elements[0].str != "master")) {
        // A stale sentinel pointed at a replica; ask again shortly.
        return step(absl::UnavailableError(absl::StrCat(
            "redis at ", where, " is not the master (ROLE says ",
            r->elements.empty() ? "nothing" : r->elements[0].str, ")")));
      }
      step(absl::OkStatus());
    });
  }
}

void RedisClient::BecomeUp(std::shared_ptr<RedisConnection> conn) {
  attempt_conn_.reset();
  conn_ = std::move(conn);
  ++connections_made_;
  last_error_.clear();
  next_delay_ = absl::ZeroDuration();
  auto live = Guard(attempt_);
  conn_->SetOnLost([live, this](absl::Status why) {
    if (live()) Lost(why);
  });
  SetState(State::kUp, conn_->address().ToString());
  std::deque<Waiting> waiting = std::exchange(waiting_, {});
  for (Waiting& w : waiting) {
    Submit(std::move(w.commands), w.pipeline, std::move(w.cb));
  }
}

void RedisClient::AttemptFailed(const absl::Status& why) {
  attempt_conn_.reset();
  last_error_ = std::string(why.message());
  FailWaiting(why);
  SetState(State::kDown, last_error_);
  ScheduleRetry();
}

void RedisClient::Lost(const absl::Status& why) {
  conn_.reset();
  last_error_ = std::string(why.message());
  SetState(State::kDown, last_error_);
  // The first retry goes at once: a failover or restart may be instant.
  ScheduleRetry();
}

void RedisClient::ScheduleRetry() {
  absl::Duration delay = next_delay_;
  next_delay_ =
      std::clamp(next_delay_ * 2, config_.reconnect_min, config_.reconnect_max);
  if (delay > absl::ZeroDuration()) {
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    delay = std::min(delay * jitter(rng_), config_.reconnect_max);
  }
  ++attempt_;
  retry_timer_.expires_after(absl::ToChronoNanoseconds(delay));
  retry_timer_.async_wait(
      [live = Guard(attempt_), this](boost::system::error_code ec) {
        if (!ec && live()) Attempt();
      });
}

void RedisClient::FailWaiting(const absl::Status& why) {
  std::deque<Waiting> waiting = std::exchange(waiting_, {});
  for (Waiting& w : waiting) {
    boost::asio::post(io_, [cb = std::move(w.cb), why] { cb(why); });
  }
}

void RedisClient::Command(const std::vector<std::string>& args,
                          RedisCallback cb) {
  RedisCommands command;
  command.Add(args);
  Submit(std::move(command), /*pipeline=*/false, std::move(cb));
}

void RedisClient::Pipeline(RedisCommands commands, RedisCallback cb) {
  Submit(std::move(commands), /*pipeline=*/true, std::move(cb));
}

void RedisClient::Submit(RedisCommands commands, bool pipeline,
                         RedisCallback cb) {
  if (state_ == State::kUp && conn_ && !conn_->connected()) {
    // It died a moment ago and the news is still queued on the loop.
    Lost(absl::UnavailableError(absl::StrCat(
        "connection to redis at ", conn_->address().ToString(), " lost")));
  }
  if (state_ == State::kUp && conn_) {
    std::weak_ptr<RedisConnection> weak = conn_;
    auto reply = [weak, live = Guard(attempt_), this,
                  cb = std::move(cb)](absl::StatusOr<RedisReply> r) {
      // READONLY: the server became a replica under us (failover). Drop it
      // and resolve the master again.
      if (!r.ok() && IsRoleChangeError(r.status()) && live()) {
        if (auto c = weak.lock(); c && c == conn_) {
          c->Close(r.status());
          Lost(r.status());
        }
      }
      cb(std::move(r));
    };
    if (pipeline) {
      conn_->SendPipeline(commands, std::move(reply));
    } else {
      conn_->SendFormatted(commands, std::move(reply));
    }
    return;
  }
  if (state_ == State::kConnecting && waiting_.size() < kMaxWaiting) {
    waiting_.push_back({std::move(commands), pipeline, std::move(cb)});
    return;
  }
  absl::Status s = absl::UnavailableError(
      state_ == State::kStopped ? std::string("redis client is stopped")
                                : absl::StrCat("redis is down: ", last_error_));
  boost::asio::post(io_, [cb = std::move(cb), s] { cb(s); });
}

}  // namespace corral::worker
