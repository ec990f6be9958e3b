// Shared session state in Redis, so that any worker in any pod continues any
// user's session.
//
// Layout (docs/sessions.md): one hash per session at
// `<prefix><hex sha256(id)>` (prefix "corral:sess:"), fields `_created` and
// `_expires` (unix seconds, the absolute end) plus the application's fields.
// The key's TTL is the idle timeout, refreshed on every use but never past
// `_expires`. Every operation is one Lua script, so it is atomic: two workers
// incrementing one field at once lose nothing, and an expired session is
// never resurrected by a late write.
//
// A missing, malformed, unknown or expired cookie starts a new session; it is
// never an error. When Redis is unavailable the callbacks get Unavailable
// (answer 503) and nothing else is affected.
//
// Single-threaded: use from the loop that runs the RedisClient. Callbacks
// run on that loop: posted after Redis answers, or at once for an argument
// error (a reserved field name).
#ifndef CORRAL_WORKER_SDK_SESSION_STORE_H_
#define CORRAL_WORKER_SDK_SESSION_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "worker/sdk/redis_client.h"

namespace corral::worker {

struct SessionOptions {
  // A session unused this long ends (sliding: every use restarts it).
  absl::Duration idle_timeout = absl::Minutes(30);
  // A session ends this long after creation however busy it is.
  absl::Duration absolute_timeout = absl::Hours(8);
  // Redis key prefix; the hex SHA-256 of the id follows.
  std::string key_prefix = "corral:sess:";
};

using SessionFields = std::map<std::string, std::string>;

struct Session {
  std::string id;            // the cookie value
  bool is_new = false;       // created by this call: send the cookie
  int64_t created_unix = 0;  // seconds since the epoch (Redis' clock)
  int64_t expires_unix = 0;  // the absolute end
  SessionFields fields;      // the application's fields
};

// The result of an increment.
struct SessionCounter {
  std::string id;
  bool is_new = false;
  int64_t value = 0;
  int64_t expires_unix = 0;
};

class SessionStore {
 public:
  template <typename T>
  using Callback = std::function<void(absl::StatusOr<T>)>;
  using Done = std::function<void(absl::Status)>;

  SessionStore(RedisClient& redis, SessionOptions options = {});
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;

  // The session named by `cookie`, its idle timeout refreshed; a new one
  // (with `initial` fields) when there is none.
  void Load(absl::string_view cookie, Callback<Session> cb,
            SessionFields initial = {});

  // Atomically adds `delta` to the integer field `field` of the cookie's
  // session, creating a new session with field = delta when there is none.
  void Increment(absl::string_view cookie, std::string field, int64_t delta,
                 Callback<SessionCounter> cb);

  // Sets fields of an existing session. NotFound when it is gone.
  void Set(absl::string_view id, SessionFields fields, Done cb);

  // Ends a session (logout). OK also when it did not exist.
  void Destroy(absl::string_view id, Done cb);

  // Moves a session to a fresh id (after login or any privilege change,
  // against fixation); the old id stops working at once. NotFound when the
  // session is gone.
  void Rotate(absl::string_view id, Callback<std::string> cb);

  // The Redis key of a session id.
  std::string KeyFor(absl::string_view id) const;
  bool available() const { return redis_.up(); }
  const SessionOptions& options() const { return options_; }

 private:
  void Create(SessionFields initial, int tries, Callback<Session> cb);
  // args = {any, any, numkeys, keys..., argv...}; the first two slots get
  // EVALSHA and the script's SHA-1 (or EVAL and the script).
  void Eval(const char* script, std::vector<std::string> args,
            RedisCallback cb);
  const std::string& ScriptSha(const char* script);

  RedisClient& redis_;
  const SessionOptions options_;
  const std::string idle_seconds_;
  const std::string absolute_seconds_;
  std::unordered_map<const char*, std::string> script_shas_;
};

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_SESSION_STORE_H_
