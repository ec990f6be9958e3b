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
// Two formats (SessionOptions::format): corral's (above), shared with the
// Node package's CorralStore; and express-session + connect-redis's
// (`sess:<id>` JSON documents, signed `connect.sid` cookies), so a C++
// service joins an existing Express app's sessions (connect_redis_sessions.h).
// With cookie_secrets set, cookie values are signed as express-session signs
// them (cookie_signature.h) and every `id` / `cookie` below is that signed
// cookie value: the API is the same either way.
//
// Single-threaded: use from the loop that runs the RedisClient. Callbacks
// run on that loop: posted after Redis answers, or at once for an argument
// error (a reserved field name).
#ifndef CORRAL_WORKER_SDK_SESSION_STORE_H_
#define CORRAL_WORKER_SDK_SESSION_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "worker/sdk/redis_client.h"

namespace corral::worker {

class ConnectRedisSessions;

enum class SessionFormat {
  kCorral,        // one hash per hashed id (docs/sessions.md)
  kConnectRedis,  // express-session + connect-redis: "sess:<id>" = JSON
};

struct SessionOptions {
  // A session unused this long ends (sliding: every use restarts it). In
  // kConnectRedis: the cookie maxAge of sessions this store creates (the
  // sessions' own cookie.originalMaxAge governs their TTL).
  absl::Duration idle_timeout = absl::Minutes(30);
  // A session ends this long after creation however busy it is (kCorral
  // only: express-session has no such limit).
  absl::Duration absolute_timeout = absl::Hours(8);
  // Redis key prefix; empty: "corral:sess:" (the hex SHA-256 of the id
  // follows) or "sess:" (the id follows; connect-redis's `prefix`).
  std::string key_prefix = "";
  SessionFormat format = SessionFormat::kCorral;
  // express-session's `secret`: cookies are "s:<id>.<HMAC-SHA256>",
  // URL-encoded; the first secret signs, every one verifies (rotation).
  // Empty: the cookie is the bare id (kCorral only).
  std::vector<std::string> cookie_secrets = {};
  // The cookie the application reads and sets (express-session's `name`).
  std::string cookie_name = "corral_sid";
  // kConnectRedis: TTL of a session whose cookie has no maxAge
  // (connect-redis's `ttl`, one day by default).
  absl::Duration connect_redis_ttl = absl::Hours(24);
};

// SessionOptions from the environment, each unset variable keeping its
// default: SESSION_FORMAT (corral | connect-redis), SESSION_SECRET (the
// signing secret) and SESSION_OLD_SECRETS (comma separated, still
// accepted), SESSION_COOKIE_NAME (default corral_sid, or connect.sid for
// connect-redis), SESSION_KEY_PREFIX, SESSION_IDLE_TIMEOUT,
// SESSION_ABSOLUTE_TIMEOUT (durations: 30m, 8h). Errors name the variable.
absl::StatusOr<SessionOptions> SessionOptionsFromEnvironment();

// Checks a SessionOptions (SessionStore::Create does).
absl::Status ValidateSessionOptions(const SessionOptions& options);

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

  // With options ValidateSessionOptions refuses, every call fails with
  // that error (check them first).
  SessionStore(RedisClient& redis, SessionOptions options = {});
  ~SessionStore();
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

  // Sets fields of an existing session. NotFound when it is gone. In
  // kConnectRedis the values are JSON text ("7", "\"bob\"").
  void Set(absl::string_view id, SessionFields fields, Done cb);

  // Ends a session (logout). OK also when it did not exist.
  void Destroy(absl::string_view id, Done cb);

  // Moves a session to a fresh id (after login or any privilege change,
  // against fixation); the old id stops working at once. NotFound when the
  // session is gone.
  void Rotate(absl::string_view id, Callback<std::string> cb);

  // The Redis key of a session id (the bare id, not the cookie value).
  std::string KeyFor(absl::string_view id) const;
  // The cookie value for a bare id (signed when there are secrets), and
  // back: nullopt when the cookie is not one this store could have issued.
  std::string CookieValue(absl::string_view id) const;
  std::optional<std::string> IdFromCookie(absl::string_view cookie) const;
  bool available() const { return redis_.up(); }
  const SessionOptions& options() const { return options_; }

 private:
  void Create(SessionFields initial, int tries, Callback<Session> cb);
  // What this worker keeps of a recently used id.
  struct KnownId {
    std::string key;  // KeyFor: a busy session is hashed once
    absl::Time refreshed = absl::InfinitePast();  // its last EXPIRE from us
  };
  KnownId& Known(absl::string_view id) const;
  // True when a request should renew the idle timeout (and notes that).
  bool ShouldRefresh(KnownId& known);
  // After a Load or Increment pipeline: then(false) when its reply shows no
  // session (no `_expires`, or passed), and the key is deleted; else
  // then(true), after capping the key's TTL at `_expires` when that is near
  // and this request renewed it (see session_store.cc).
  template <typename Then>
  void Settle(const std::string& key, int64_t expires_unix, bool refreshed,
              Then then);
  // The callbacks with bare ids turned into cookie values.
  Callback<Session> Signing(Callback<Session> cb) const;
  Callback<SessionCounter> Signing(Callback<SessionCounter> cb) const;
  Callback<std::string> Signing(Callback<std::string> cb) const;
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
  // Recently used ids. At most kKeyCacheSize entries, emptied when full.
  mutable std::unordered_map<std::string, KnownId> known_;
  const absl::Duration refresh_interval_;
  const absl::Status options_error_;
  std::unique_ptr<ConnectRedisSessions> connect_redis_;  // kConnectRedis
};

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_SESSION_STORE_H_
