// Test helper: a real redis-server (or redis-sentinel) on a free loopback
// port in a temp dir, killed by pid when the helper goes away. The child
// gets PR_SET_PDEATHSIG, so it dies with the test even on a crash.
#ifndef CORRAL_TESTS_SESSIONS_REDIS_SERVER_H_
#define CORRAL_TESTS_SESSIONS_REDIS_SERVER_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "boost/asio/io_context.hpp"

namespace corral::testing {

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

class RedisServer {
 public:
  // Starts redis-server on `port` (0 = a free one) with `extra` arguments
  // (e.g. {"--requirepass", "pw"}); waits until it answers PING.
  explicit RedisServer(std::vector<std::string> extra = {}, int port = 0);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  std::string url() const;

  // SIGKILL and reap.
  void Kill();
  // Start again on the same port and dir.
  bool Restart();
  void Signal(int signo);
  // A command over a short-lived sync connection; "" on failure.
  std::string Command(const std::vector<std::string>& args,
                      const std::string& password = "") const;

 private:
  bool Spawn();

  std::vector<std::string> extra_;
  std::string dir_;
  int port_;
  pid_t pid_ = -1;
};

// Runs `io` until `done()` or `timeout`; true when done() held.
bool RunUntil(boost::asio::io_context& io, const std::function<bool()>& done,
              std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace corral::testing

#endif  // CORRAL_TESTS_SESSIONS_REDIS_SERVER_H_
