// A Redis client for one worker: one pipelined connection that is always
// being kept up. It connects (directly, or by asking Sentinel for the
// master), authenticates and selects the db, and when the connection dies it
// reconnects at once, then with backoff (RedisConfig::reconnect_*), asking
// Sentinel again every time, so a failover is followed.
//
// While the connection is being made, commands wait for it (up to the
// connect timeout); while Redis is down they fail at once with Unavailable,
// so callers can answer 503 without piling up work.
//
// Single-threaded: use from the io_context's thread. Callbacks run posted on
// that loop, never inside another call.
#ifndef CORRAL_WORKER_SDK_REDIS_CLIENT_H_
#define CORRAL_WORKER_SDK_REDIS_CLIENT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/steady_timer.hpp"
#include "worker/sdk/redis_config.h"
#include "worker/sdk/redis_connection.h"

namespace corral::worker {

class RedisClient {
 public:
  enum class State { kStopped, kConnecting, kUp, kDown };
  // Called on every state change; `detail` is the server in use (kUp) or
  // why it is not (kDown).
  using StateListener = std::function<void(State, const std::string& detail)>;

  RedisClient(boost::asio::io_context& io, RedisConfig config);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  void Start();
  // Closes the connection; waiting commands fail with Cancelled.
  void Stop();

  // `args` is read at once (copied only while the connection is being made).
  void Command(const std::vector<std::string>& args, RedisCallback cb);
  // `commands` back to back, one reply: an array of theirs (not atomic;
  // RedisConnection::SendPipeline). Waits for a connection, or fails, as a
  // whole.
  void Pipeline(RedisCommands commands, RedisCallback cb);

  void OnStateChange(StateListener listener);
  State state() const { return state_; }
  bool up() const { return state_ == State::kUp; }
  // Why Redis is unavailable ("" when up).
  const std::string& last_error() const { return last_error_; }
  // The server in use when up (the master, in Sentinel mode).
  std::string endpoint() const;
  const RedisConfig& config() const { return config_; }
  // Completed connections so far (1 + reconnects).
  uint64_t connections_made() const { return connections_made_; }

 private:
  struct Waiting {
    RedisCommands commands;
    bool pipeline = false;  // else commands holds one command
    RedisCallback cb;
  };
  void Submit(RedisCommands commands, bool pipeline, RedisCallback cb);

  void Attempt();
  void AskSentinel(size_t index, std::string errors);
  void ConnectTo(const RedisAddress& address, bool check_role);
  void Handshake(std::shared_ptr<RedisConnection> conn, bool check_role);
  void BecomeUp(std::shared_ptr<RedisConnection> conn);
  void AttemptFailed(const absl::Status& why);
  void Lost(const absl::Status& why);
  void ScheduleRetry();
  void FailWaiting(const absl::Status& why);
  void SetState(State state, const std::string& detail);
  std::function<bool()> Guard(uint64_t attempt) const;

  boost::asio::io_context& io_;
  RedisConfig config_;
  boost::asio::steady_timer retry_timer_;
  std::mt19937_64 rng_;
  std::shared_ptr<RedisConnection> conn_;
  std::shared_ptr<RedisConnection> attempt_conn_;
  std::deque<Waiting> waiting_;
  std::vector<StateListener> listeners_;
  std::string last_error_;
  // Liveness token for posted work that outlives us.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  absl::Duration next_delay_ = absl::ZeroDuration();
  uint64_t attempt_ = 0;
  uint64_t connections_made_ = 0;
  State state_ = State::kStopped;
};

const char* RedisStateName(RedisClient::State state);

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_REDIS_CLIENT_H_
