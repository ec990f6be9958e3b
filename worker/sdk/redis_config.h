// Where and how to reach Redis: REDIS_URL, or Sentinel with REDIS_SENTINELS
// and REDIS_MASTER_NAME.
//
//   REDIS_URL=redis://[[user]:password@]host[:port][/db]
//   REDIS_URL=unix:/path/to/redis.sock[?db=N&password=P]
//   REDIS_SENTINELS=host:port,host:port,...   (Sentinel mode when set)
//   REDIS_MASTER_NAME=mymaster                 (default "mymaster")
//   REDIS_SENTINEL_PASSWORD=...                (optional)
//
// In Sentinel mode REDIS_URL still supplies the password and db (its host is
// not used).
#ifndef CORRAL_WORKER_SDK_REDIS_CONFIG_H_
#define CORRAL_WORKER_SDK_REDIS_CONFIG_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace corral::worker {

// A TCP host:port, or a unix socket path when unix_path is set.
struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_path;

  std::string ToString() const;
  friend bool operator==(const RedisAddress&, const RedisAddress&) = default;
};

struct RedisConfig {
  // Direct mode: the server. Unused in Sentinel mode.
  RedisAddress address;
  // Sentinel mode when non-empty: asked in order for `master_name`.
  std::vector<RedisAddress> sentinels;
  std::string master_name = "mymaster";
  std::string sentinel_password;
  // AUTH [username] password after connecting, when password is set.
  std::string username;
  std::string password;
  // SELECT db after connecting, when not 0.
  int db = 0;
  // Connecting (TCP plus AUTH/SELECT/ROLE) may take this long.
  absl::Duration connect_timeout = absl::Milliseconds(500);
  // A command without a reply for this long marks the connection dead.
  absl::Duration command_timeout = absl::Seconds(1);
  // Reconnect delays: the first retry at once, then doubling from min to max
  // (+-20% jitter). max bounds recovery time after Redis comes back.
  absl::Duration reconnect_min = absl::Milliseconds(50);
  absl::Duration reconnect_max = absl::Milliseconds(500);

  bool sentinel_mode() const { return !sentinels.empty(); }
  // "redis://host:port/db" or "sentinel:mymaster@h1:p1,h2:p2/db".
  std::string Describe() const;
};

// Parses a REDIS_URL (see the file comment) into `config`'s address,
// credentials and db. Errors quote the URL (without its password).
absl::StatusOr<RedisConfig> ParseRedisUrl(absl::string_view url);

// "host:port,host:port" -> addresses.
absl::StatusOr<std::vector<RedisAddress>> ParseSentinelList(
    absl::string_view list);

// The configuration from the environment; REDIS_URL defaults to
// redis://127.0.0.1:6379/0.
absl::StatusOr<RedisConfig> RedisConfigFromEnvironment();

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_REDIS_CONFIG_H_
