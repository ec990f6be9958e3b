#include "worker/sdk/session_store.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/duration.h"
#include "worker/sdk/connect_redis_sessions.h"
#include "worker/sdk/cookie_signature.h"
#include "worker/sdk/session_id.h"
#include "worker/sdk/session_scripts.h"

namespace corral::worker {
namespace {

// Load and Increment, the two a busy site runs on every request, are
// pipelines of plain commands; the rest are Lua scripts. Redis spends about
// 5 us entering a script and 1.5-2 us per redis.call in it: the increment
// script cost 11-14 us of Redis CPU, its commands in a pipeline 4-5 us
// (docs/sessions.md has the figures). A pipeline cannot branch and other
// clients' commands may run between its commands, so its rules are kept
// this way (each holds whatever runs in between):
//   - a hash without `_expires`, or whose `_expires` has passed, is no
//     session, for every reader (these, the scripts, the Node store);
//   - HINCRBY on an ended session re-creates its key with only that field:
//     the HGET after it shows no `_expires`, so the request gets a new
//     session and the worker deletes the stray key (it expires anyway:
//     EXPIRE or the end of the idle timeout);
//   - EXPIRE renews the idle timeout, at most every 1/kRefreshFraction of it
//     per worker and session (a write every request would cost Redis, its
//     replicas and its AOF for no gain);
//   - near the session's absolute end (within twice the idle timeout, by
//     this worker's clock: slack for clock skew) every EXPIRE is followed
//     by EXPIREAT `_expires` LT, and the caller is answered after that one,
//     so Redis ends the key at its absolute end, on Redis' clock.
// The scripts (create, set, rotate) are in session_scripts.h.

// How often to draw a new id when one is taken (2^-256 odds: never).
constexpr int kCreateTries = 3;

// Ids whose key and last refresh are kept (about 200 bytes each).
constexpr size_t kKeyCacheSize = 4096;

// A worker renews a session's idle timeout at most every 1/64 of it (at
// most every minute): a session may end that much early (28 s of 30 min).
constexpr int kRefreshFraction = 64;
constexpr absl::Duration kMaxRefreshInterval = absl::Minutes(1);

std::string Seconds(absl::Duration d) {
  return std::to_string(std::max<int64_t>(1, absl::ToInt64Seconds(d)));
}

absl::Status CheckFieldName(const std::string& name) {
  if (name.empty() || name[0] == '_') {
    return absl::InvalidArgumentError(absl::StrCat(
        "session field \"", name,
        "\": names must be non-empty and not start with '_' (reserved)"));
  }
  return absl::OkStatus();
}

absl::Status CheckFields(const SessionFields& fields) {
  for (const auto& [name, value] : fields) {
    if (absl::Status s = CheckFieldName(name); !s.ok()) return s;
  }
  return absl::OkStatus();
}

int64_t IntOf(const RedisReply& r) {
  if (r.type == RedisReply::Type::kInteger) return r.integer;
  int64_t v = 0;
  (void)absl::SimpleAtoi(r.str, &v);
  return v;
}

// HGETALL's flat [name, value, ...] into a Session.
Session ToSession(std::string id, const RedisReply& all) {
  Session s;
  s.id = std::move(id);
  for (size_t i = 0; i + 1 < all.elements.size(); i += 2) {
    const std::string& name = all.elements[i].str;
    const std::string& value = all.elements[i + 1].str;
    if (name == "_created") {
      (void)absl::SimpleAtoi(value, &s.created_unix);
    } else if (name == "_expires") {
      (void)absl::SimpleAtoi(value, &s.expires_unix);
    } else if (!absl::StartsWith(name, "_")) {
      s.fields[name] = value;
    }
  }
  return s;
}

// An element of a pipeline's reply as a Status: a command's error.
absl::Status ElementStatus(const RedisReply& e) {
  if (e.type != RedisReply::Type::kError) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("redis: ", e.str));
}

std::string DefaultPrefix(const SessionOptions& o) {
  if (!o.key_prefix.empty()) return o.key_prefix;
  return o.format == SessionFormat::kConnectRedis ? "sess:" : "corral:sess:";
}

}  // namespace

absl::Status ValidateSessionOptions(const SessionOptions& o) {
  if (o.idle_timeout <= absl::ZeroDuration() ||
      o.absolute_timeout <= absl::ZeroDuration() ||
      o.connect_redis_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("session timeouts must be positive");
  }
  if (o.format == SessionFormat::kConnectRedis && o.cookie_secrets.empty()) {
    return absl::InvalidArgumentError(
        "the connect-redis session format needs the cookie secret of the "
        "Express app (SESSION_SECRET): express-session signs every cookie");
  }
  for (const std::string& secret : o.cookie_secrets) {
    if (secret.empty()) {
      return absl::InvalidArgumentError("a session cookie secret is empty");
    }
  }
  if (o.cookie_name.empty() ||
      o.cookie_name.find_first_of(" \t;,=\"") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "session cookie name \"", o.cookie_name, "\" is not a cookie name"));
  }
  return absl::OkStatus();
}

namespace {

absl::Status DurationFromEnv(const char* name, absl::Duration* out) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return absl::OkStatus();
  // The agent's duration syntax (common/duration.h): one parser for both.
  absl::StatusOr<absl::Duration> d = corral::common::ParseDuration(v);
  if (!d.ok() || *d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, "=\"", v, "\" is not a positive duration (like 30m or 8h)",
        d.ok() ? "" : absl::StrCat(": ", d.status().message())));
  }
  *out = *d;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SessionOptions> SessionOptionsFromEnvironment() {
  SessionOptions o;
  if (const char* f = getenv("SESSION_FORMAT"); f != nullptr && *f != '\0') {
    if (absl::string_view(f) == "connect-redis") {
      o.format = SessionFormat::kConnectRedis;
      o.cookie_name = "connect.sid";
    } else if (absl::string_view(f) != "corral") {
      return absl::InvalidArgumentError(absl::StrCat(
          "SESSION_FORMAT=\"", f, "\": expected corral or connect-redis"));
    }
  }
  if (const char* v = getenv("SESSION_SECRET"); v != nullptr && *v != '\0') {
    o.cookie_secrets.push_back(v);
  }
  if (const char* v = getenv("SESSION_OLD_SECRETS")) {
    if (o.cookie_secrets.empty() && *v != '\0') {
      return absl::InvalidArgumentError(
          "SESSION_OLD_SECRETS is set but SESSION_SECRET is not");
    }
    for (absl::string_view s : absl::StrSplit(v, ',', absl::SkipEmpty())) {
      o.cookie_secrets.emplace_back(s);
    }
  }
  if (const char* v = getenv("SESSION_COOKIE_NAME"); v && *v) o.cookie_name = v;
  if (const char* v = getenv("SESSION_KEY_PREFIX"); v && *v) o.key_prefix = v;
  for (auto [name, out] : {std::pair{"SESSION_IDLE_TIMEOUT", &o.idle_timeout},
                           {"SESSION_ABSOLUTE_TIMEOUT", &o.absolute_timeout}}) {
    if (absl::Status s = DurationFromEnv(name, out); !s.ok()) return s;
  }
  if (absl::Status s = ValidateSessionOptions(o); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("session settings: ", s.message()));
  }
  return o;
}

SessionStore::SessionStore(RedisClient& redis, SessionOptions options)
    : redis_(redis),
      options_(std::move(options)),
      idle_seconds_(Seconds(options_.idle_timeout)),
      absolute_seconds_(Seconds(options_.absolute_timeout)),
      refresh_interval_(std::min(options_.idle_timeout / kRefreshFraction,
                                 kMaxRefreshInterval)),
      options_error_(ValidateSessionOptions(options_)) {
  if (options_.format == SessionFormat::kConnectRedis) {
    connect_redis_ = std::make_unique<ConnectRedisSessions>(
        redis_,
        [this](const char* script, std::vector<std::string> args,
               RedisCallback cb) {
          Eval(script, std::move(args), std::move(cb));
        },
        options_, DefaultPrefix(options_));
  }
}

SessionStore::~SessionStore() = default;

// EVALSHA first: Redis then neither receives nor hashes the script text
// on every request. After a restart or failover the script cache is empty
// (NOSCRIPT): send it once with EVAL, which also caches it.
void SessionStore::Eval(const char* script, std::vector<std::string> args,
                        RedisCallback cb) {
  args[0] = "EVALSHA";
  args[1] = ScriptSha(script);
  // Kept for the NOSCRIPT retry, shared rather than copied per request.
  auto kept = std::make_shared<std::vector<std::string>>(std::move(args));
  redis_.Command(*kept, [this, script, kept, cb = std::move(cb)](
                            absl::StatusOr<RedisReply> r) mutable {
    if (!r.ok() && absl::StartsWith(r.status().message(), "redis: NOSCRIPT")) {
      (*kept)[0] = "EVAL";
      (*kept)[1] = script;
      return redis_.Command(*kept, std::move(cb));
    }
    cb(std::move(r));
  });
}

const std::string& SessionStore::ScriptSha(const char* script) {
  std::string& sha = script_shas_[script];
  if (sha.empty()) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(script, strlen(script), digest, &len, EVP_sha1(), nullptr);
    sha = absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(digest), len));
  }
  return sha;
}

std::string SessionStore::KeyFor(absl::string_view id) const {
  if (connect_redis_) return connect_redis_->KeyFor(id);
  return Known(id).key;
}

SessionStore::KnownId& SessionStore::Known(absl::string_view id) const {
  if (auto it = known_.find(std::string(id)); it != known_.end()) {
    return it->second;
  }
  if (known_.size() >= kKeyCacheSize) known_.clear();
  return known_
      .emplace(std::string(id),
               KnownId{absl::StrCat(DefaultPrefix(options_), Sha256Hex(id))})
      .first->second;
}

bool SessionStore::ShouldRefresh(KnownId& known) {
  const absl::Time now = absl::Now();
  if (now - known.refreshed < refresh_interval_) return false;
  known.refreshed = now;
  return true;
}

std::string SessionStore::CookieValue(absl::string_view id) const {
  if (options_.cookie_secrets.empty()) return std::string(id);
  return SignedCookieValue(id, options_.cookie_secrets.front());
}

std::optional<std::string> SessionStore::IdFromCookie(
    absl::string_view cookie) const {
  if (options_.cookie_secrets.empty()) {
    if (!IsWellFormedSessionId(cookie)) return std::nullopt;
    return std::string(cookie);
  }
  std::optional<std::string> id =
      IdFromSignedCookie(cookie, options_.cookie_secrets);
  if (!id) return std::nullopt;
  // Signed by a secret we hold, so it is an id someone we trust issued;
  // the corral layout also needs it to be one of ours (43 characters).
  if (connect_redis_ ? id->empty() || id->size() > 256
                     : !IsWellFormedSessionId(*id)) {
    return std::nullopt;
  }
  return id;
}

SessionStore::Callback<Session> SessionStore::Signing(
    Callback<Session> cb) const {
  if (options_.cookie_secrets.empty()) return cb;
  return [this, cb = std::move(cb)](absl::StatusOr<Session> s) {
    if (s.ok()) s->id = CookieValue(s->id);
    cb(std::move(s));
  };
}

SessionStore::Callback<SessionCounter> SessionStore::Signing(
    Callback<SessionCounter> cb) const {
  if (options_.cookie_secrets.empty()) return cb;
  return [this, cb = std::move(cb)](absl::StatusOr<SessionCounter> c) {
    if (c.ok()) c->id = CookieValue(c->id);
    cb(std::move(c));
  };
}

SessionStore::Callback<std::string> SessionStore::Signing(
    Callback<std::string> cb) const {
  if (options_.cookie_secrets.empty()) return cb;
  return [this, cb = std::move(cb)](absl::StatusOr<std::string> id) {
    if (id.ok()) *id = CookieValue(*id);
    cb(std::move(id));
  };
}

void SessionStore::Load(absl::string_view cookie, Callback<Session> cb_in,
                        SessionFields initial) {
  if (!options_error_.ok()) return cb_in(options_error_);
  Callback<Session> cb = Signing(std::move(cb_in));
  std::optional<std::string> id = IdFromCookie(cookie);
  if (connect_redis_) {
    return connect_redis_->Load(std::move(id), std::move(initial),
                                std::move(cb));
  }
  if (absl::Status s = CheckFields(initial); !s.ok()) return cb(s);
  if (!id) return Create(std::move(initial), kCreateTries, std::move(cb));
  KnownId& known = Known(*id);
  const bool refresh = ShouldRefresh(known);
  RedisCommands commands{{"HGETALL", known.key}};
  // EXPIRE on a missing key does nothing: a touch brings nothing back.
  if (refresh) commands.Add({"EXPIRE", known.key, idle_seconds_});
  redis_.Pipeline(
      std::move(commands),
      [this, id = *id, key = known.key, refresh, cb = std::move(cb),
       initial = std::move(initial)](absl::StatusOr<RedisReply> r) mutable {
        if (!r.ok()) return cb(r.status());
        if (r->elements.size() != (refresh ? 2 : 1)) {
          return cb(absl::InternalError("redis: bad reply to a session load"));
        }
        if (absl::Status s = ElementStatus(r->elements[0]); !s.ok()) {
          return cb(s);
        }
        Session s = ToSession(std::move(id), r->elements[0]);
        const int64_t expires_unix = s.expires_unix;
        Settle(key, expires_unix, refresh,
               [this, s = std::move(s), cb = std::move(cb),
                initial = std::move(initial)](bool alive) mutable {
                 if (!alive) {
                   return Create(std::move(initial), kCreateTries,
                                 std::move(cb));
                 }
                 cb(std::move(s));
               });
      });
}

template <typename Then>
void SessionStore::Settle(const std::string& key, int64_t expires_unix,
                          bool refreshed, Then then) {
  const int64_t left = expires_unix - absl::ToUnixSeconds(absl::Now());
  if (expires_unix == 0 || left <= 0) {
    // Ended, or a key an increment re-created: never a session again.
    redis_.Command({"DEL", key}, [](absl::StatusOr<RedisReply>) {});
    return then(false);
  }
  if (refreshed && left < 2 * absl::ToInt64Seconds(options_.idle_timeout)) {
    // LT: only ever shortens. With between one and two idle timeouts left,
    // a plain EXPIREAT would stretch the TTL past the idle timeout.
    redis_.Command({"EXPIREAT", key, std::to_string(expires_unix), "LT"},
                   [then = std::move(then)](
                       absl::StatusOr<RedisReply>) mutable { then(true); });
    return;
  }
  then(true);
}

void SessionStore::Create(SessionFields initial, int tries,
                          Callback<Session> cb) {
  absl::StatusOr<std::string> id = NewSessionId();
  if (!id.ok()) return cb(id.status());
  std::vector<std::string> args = {
      "EVALSHA", "", "1", KeyFor(*id), idle_seconds_, absolute_seconds_};
  for (const auto& [name, value] : initial) {
    args.push_back(name);
    args.push_back(value);
  }
  Eval(kCreateScript, std::move(args),
       [this, id = *id, tries, cb = std::move(cb),
        initial = std::move(initial)](absl::StatusOr<RedisReply> r) mutable {
         if (!r.ok()) return cb(r.status());
         if (r->type != RedisReply::Type::kArray || r->elements.size() != 2) {
           if (tries > 1)
             return Create(std::move(initial), tries - 1, std::move(cb));
           return cb(absl::InternalError("could not draw a free session id"));
         }
         Session s;
         s.id = std::move(id);
         s.is_new = true;
         s.created_unix = IntOf(r->elements[0]);
         s.expires_unix = IntOf(r->elements[1]);
         s.fields = std::move(initial);
         cb(std::move(s));
       });
}

void SessionStore::Increment(absl::string_view cookie, std::string field,
                             int64_t delta, Callback<SessionCounter> cb_in) {
  if (!options_error_.ok()) return cb_in(options_error_);
  Callback<SessionCounter> cb = Signing(std::move(cb_in));
  std::optional<std::string> id = IdFromCookie(cookie);
  if (connect_redis_) {
    return connect_redis_->Increment(std::move(id), std::move(field), delta,
                                     std::move(cb));
  }
  if (absl::Status s = CheckFieldName(field); !s.ok()) return cb(s);
  auto create = [this, field, delta](Callback<SessionCounter> cb) {
    Create({{field, std::to_string(delta)}}, kCreateTries,
           [cb = std::move(cb), delta](absl::StatusOr<Session> s) {
             if (!s.ok()) return cb(s.status());
             cb(SessionCounter{s->id, true, delta, s->expires_unix});
           });
  };
  if (!id) return create(std::move(cb));
  KnownId& known = Known(*id);
  const bool refresh = ShouldRefresh(known);
  RedisCommands commands{{"HINCRBY", known.key, field, std::to_string(delta)},
                         {"HGET", known.key, "_expires"}};
  if (refresh) commands.Add({"EXPIRE", known.key, idle_seconds_});
  redis_.Pipeline(
      std::move(commands),
      [this, id = *id, key = known.key, refresh, create,
       cb = std::move(cb)](absl::StatusOr<RedisReply> r) mutable {
        if (!r.ok()) return cb(r.status());
        if (r->elements.size() != (refresh ? 3 : 2)) {
          return cb(absl::InternalError("redis: bad reply to an increment"));
        }
        const RedisReply& expires = r->elements[1];
        const int64_t expires_unix = expires.is_nil() ? 0 : IntOf(expires);
        absl::Status status = ElementStatus(r->elements[0]);
        SessionCounter counter{std::move(id), false, IntOf(r->elements[0]),
                               expires_unix};
        Settle(key, expires_unix, refresh,
               [create, status, counter = std::move(counter),
                cb = std::move(cb)](bool alive) mutable {
                 if (!alive) return create(std::move(cb));
                 if (!status.ok()) return cb(status);
                 cb(std::move(counter));
               });
      });
}

void SessionStore::Set(absl::string_view cookie, SessionFields fields,
                       Done cb) {
  if (!options_error_.ok()) return cb(options_error_);
  std::optional<std::string> id = IdFromCookie(cookie);
  if (!id) return cb(absl::NotFoundError("no such session"));
  if (connect_redis_) {
    return connect_redis_->Set(std::move(*id), std::move(fields),
                               std::move(cb));
  }
  if (absl::Status s = CheckFields(fields); !s.ok()) return cb(s);
  if (fields.empty()) return cb(absl::OkStatus());
  std::vector<std::string> args = {"EVALSHA", "", "1", KeyFor(*id),
                                   idle_seconds_};
  for (auto& [name, value] : fields) {
    args.push_back(name);
    args.push_back(value);
  }
  Eval(kSetScript, std::move(args),
       [cb = std::move(cb)](absl::StatusOr<RedisReply> r) {
         if (!r.ok()) return cb(r.status());
         cb(r->integer == 1 ? absl::OkStatus()
                            : absl::NotFoundError("no such session"));
       });
}

void SessionStore::Destroy(absl::string_view cookie, Done cb) {
  if (!options_error_.ok()) return cb(options_error_);
  std::optional<std::string> id = IdFromCookie(cookie);
  if (!id) return cb(absl::OkStatus());
  if (connect_redis_)
    return connect_redis_->Destroy(std::move(*id), std::move(cb));
  redis_.Command(
      {"DEL", KeyFor(*id)},
      [cb = std::move(cb)](absl::StatusOr<RedisReply> r) { cb(r.status()); });
}

void SessionStore::Rotate(absl::string_view cookie,
                          Callback<std::string> cb_in) {
  if (!options_error_.ok()) return cb_in(options_error_);
  Callback<std::string> cb = Signing(std::move(cb_in));
  std::optional<std::string> id = IdFromCookie(cookie);
  if (!id) return cb(absl::NotFoundError("no such session"));
  if (connect_redis_)
    return connect_redis_->Rotate(std::move(*id), std::move(cb));
  absl::StatusOr<std::string> fresh = NewSessionId();
  if (!fresh.ok()) return cb(fresh.status());
  Eval(kRotateScript, {"EVALSHA", "", "2", KeyFor(*id), KeyFor(*fresh)},
       [fresh = *fresh, cb = std::move(cb)](absl::StatusOr<RedisReply> r) {
         if (!r.ok()) return cb(r.status());
         if (r->integer == 1) return cb(fresh);
         if (r->integer == 0) {
           return cb(absl::NotFoundError("no such session"));
         }
         cb(absl::InternalError("fresh session id already taken"));
       });
}

}  // namespace corral::worker
