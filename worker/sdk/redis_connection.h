// One hiredis async connection on the worker's loop, with the timeouts
// hiredis 0.14 lacks: a connect timeout and a per-command reply deadline
// (a command unanswered past its deadline marks the connection dead).
//
// Replies are delivered by posting to the loop, never from inside hiredis,
// so a callback may freely send, close or destroy things.
//
// Single-threaded: use from the io_context's thread.
#ifndef CORRAL_WORKER_SDK_REDIS_CONNECTION_H_
#define CORRAL_WORKER_SDK_REDIS_CONNECTION_H_

#include <chrono>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/steady_timer.hpp"
#include "worker/sdk/redis_config.h"

struct redisAsyncContext;

namespace corral::worker {

// A Redis reply as a value. Error replies at the top level arrive as a
// non-OK Status instead (Unavailable for READONLY, LOADING, MASTERDOWN,
// NOREPLICAS, BUSY, TRYAGAIN; Internal for the rest), message "redis: ...".
struct RedisReply {
  enum class Type { kNil, kInteger, kString, kStatus, kError, kArray };
  Type type = Type::kNil;
  long long integer = 0;
  std::string str;  // kString, kStatus, kError
  std::vector<RedisReply> elements;

  bool is_nil() const { return type == Type::kNil; }
};

using RedisCallback = std::function<void(absl::StatusOr<RedisReply>)>;

// Commands as they go on the wire (RESP), formatted once when added, and
// where each ends. Arguments are binary-safe and copied only into `resp`.
class RedisCommands {
 public:
  RedisCommands() = default;
  RedisCommands(
      std::initializer_list<std::initializer_list<absl::string_view>> commands);
  void Add(std::initializer_list<absl::string_view> args);
  void Add(const std::vector<std::string>& args);

  size_t size() const { return ends_.size(); }
  // The i-th command's bytes.
  absl::string_view command(size_t i) const;

 private:
  template <typename Args>
  void Format(const Args& args);

  std::string resp_;
  absl::InlinedVector<size_t, 4> ends_;
};

// True for the error replies that say "this server cannot take writes now"
// (READONLY after a failover, MASTERDOWN...): reconnect and re-resolve.
bool IsRoleChangeError(const absl::Status& status);

class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
 public:
  static std::shared_ptr<RedisConnection> Create(
      boost::asio::io_context& io, absl::Duration command_timeout);

  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;
  ~RedisConnection();

  // Starts connecting; `done` gets OK once connected, else Unavailable
  // (refused, unreachable, timed out). Call once.
  void Connect(const RedisAddress& address, absl::Duration timeout,
               std::function<void(absl::Status)> done);

  // Runs once when an established connection ends other than by Close():
  // the server closed it, a socket error, or a command deadline passed.
  void SetOnLost(std::function<void(absl::Status)> on_lost);

  // Sends a command (binary-safe arguments); pipelined behind earlier ones.
  // Not connected: `cb` gets Unavailable.
  void Send(const std::vector<std::string>& args, RedisCallback cb);

  // Sends `commands` back to back (nothing of ours comes between them, but
  // other clients' commands may: not a transaction). `cb` gets one array
  // with each command's reply, a command's error as a kError element; a
  // transient error (READONLY, LOADING...) in any of them as a Status.
  void SendPipeline(const RedisCommands& commands, RedisCallback cb);
  // One command already formatted (commands.size() == 1), as Send.
  void SendFormatted(const RedisCommands& command, RedisCallback cb);

  // Ends the connection; commands without a reply get Unavailable(`why`).
  void Close(const absl::Status& why);

  bool connected() const { return connected_; }
  const RedisAddress& address() const { return address_; }

 private:
  struct Pending;

  RedisConnection(boost::asio::io_context& io, absl::Duration command_timeout);

  static void OnConnect(const redisAsyncContext* ac, int status);
  static void OnDisconnect(const redisAsyncContext* ac, int status);
  static void OnReply(redisAsyncContext* ac, void* reply, void* privdata);
  // A pipeline's replies but the last, kept in the Pending it points to.
  static void OnPart(redisAsyncContext* ac, void* reply, void* privdata);

  // SendFormatted (one command) and SendPipeline.
  void Enqueue(const RedisCommands& commands, RedisCallback cb, bool pipeline);
  // Appends one formatted command; false when hiredis refuses (closing).
  bool Append(absl::string_view command,
              void (*fn)(redisAsyncContext*, void*, void*), void* privdata);
  void Detach();
  void ArmDeadline();
  void OnDeadline();
  void Post(std::function<void()> fn);

  boost::asio::io_context& io_;
  const absl::Duration command_timeout_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer deadline_timer_;
  RedisAddress address_;
  redisAsyncContext* ac_ = nullptr;
  // Keeps us alive while hiredis holds a pointer to us.
  std::shared_ptr<RedisConnection> self_;
  std::function<void(absl::Status)> connect_done_;
  std::function<void(absl::Status)> on_lost_;
  std::deque<std::chrono::steady_clock::time_point> deadlines_;
  absl::Status close_reason_;
  bool connected_ = false;
  bool deadline_armed_ = false;
};

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_REDIS_CONNECTION_H_
