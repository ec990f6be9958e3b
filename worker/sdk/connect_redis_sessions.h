// Sessions in the layout of express-session + connect-redis, the pattern of
// the Node tutorials, so a C++ service joins an existing Express app's
// sessions (SessionFormat::kConnectRedis of SessionStore; docs/sessions.md):
//
//   key    sess:<id>                   (the id itself, not hashed)
//   value  JSON: {"cookie":{"originalMaxAge":ms,"expires":"ISO",...},
//                 "<name>":<any JSON>, ...}
//   TTL    originalMaxAge (sliding: renewed on every use, as
//          express-session's touch does), or SessionOptions::
//          connect_redis_ttl for a cookie without maxAge
//
// Fields are the top-level members other than "cookie", each as its JSON
// text ("7", "\"bob\"", "{...}"). A write changes only the members it names
// and keeps every other byte of the document; it is a compare-and-set
// script, retried when another writer got in between, so concurrent C++
// writers lose nothing (connect-redis itself writes whole documents: last
// writer wins against Node). Writes to one session from this store go one
// at a time, so retries are only needed against other processes. No
// absolute timeout: express-session has none.
//
// Internal to SessionStore, which signs and checks the cookies; ids here
// are bare. Single-threaded, like SessionStore.
#ifndef CORRAL_WORKER_SDK_CONNECT_REDIS_SESSIONS_H_
#define CORRAL_WORKER_SDK_CONNECT_REDIS_SESSIONS_H_

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "worker/sdk/json_object.h"
#include "worker/sdk/redis_client.h"
#include "worker/sdk/session_store.h"

namespace corral::worker {

class ConnectRedisSessions {
 public:
  using Eval = std::function<void(
      const char* script, std::vector<std::string> args, RedisCallback cb)>;
  template <typename T>
  using Callback = SessionStore::Callback<T>;
  using Done = SessionStore::Done;

  ConnectRedisSessions(RedisClient& redis, Eval eval,
                       const SessionOptions& options, std::string prefix);

  void Load(std::optional<std::string> id, SessionFields initial,
            Callback<Session> cb);
  void Increment(std::optional<std::string> id, std::string field,
                 int64_t delta, Callback<SessionCounter> cb);
  void Set(std::string id, SessionFields fields, Done cb);
  void Destroy(std::string id, Done cb);
  void Rotate(std::string id, Callback<std::string> cb);

  std::string KeyFor(absl::string_view id) const;

 private:
  using Mutate = std::function<absl::Status(JsonMembers&)>;
  void Create(SessionFields initial, int tries, Callback<Session> cb);
  // Reads the session, applies `mutate`, writes it back if nobody wrote in
  // between (else again, up to `tries`). NotFound when there is none.
  // Queued behind this store's other writes to the same session.
  void Modify(std::string id, Mutate mutate, Callback<JsonMembers> cb);
  void ModifyNow(std::string id, Mutate mutate, int tries,
                 Callback<JsonMembers> cb);
  // Applies `mutate` to `old` and writes it if the session is still `old`.
  void Write(std::string key, std::string old, Mutate mutate, int tries,
             Callback<JsonMembers> cb);
  void RunNext(const std::string& id);
  // "cookie.expires" moved to now + originalMaxAge, as express-session does
  // on every save; returns the TTL in seconds.
  int64_t RefreshCookie(JsonMembers& members) const;
  std::string NewCookieJson() const;

  RedisClient& redis_;
  Eval eval_;
  const SessionOptions& options_;
  const std::string prefix_;
  // Writes waiting per session id; the front one is running.
  std::unordered_map<std::string,
                     std::deque<std::function<void(std::function<void()>)>>>
      writes_;
};

// The id rotation both session formats use: KEYS[1] old, KEYS[2] new;
// returns 1 moved, 0 no session, -1 new id taken. RENAME keeps the TTL and
// every field.
inline constexpr char kRotateSessionScript[] = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('RENAME', KEYS[1], KEYS[2])
return 1
)lua";

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_CONNECT_REDIS_SESSIONS_H_
