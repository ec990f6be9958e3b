#include "worker/sdk/connect_redis_sessions.h"

#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "worker/sdk/session_id.h"

namespace corral::worker {
namespace {

// KEYS[1] session; ARGV[1] TTL seconds for a cookie without maxAge. Renews
// the TTL as connect-redis's touch does, returns the document (nil: none).
constexpr char kTouchScript[] = R"lua(
local v = redis.call('GET', KEYS[1])
if not v then return false end
local ttl = tonumber(ARGV[1])
local ok, s = pcall(cjson.decode, v)
if ok and type(s) == 'table' and type(s.cookie) == 'table'
   and type(s.cookie.originalMaxAge) == 'number' then
  ttl = math.ceil(s.cookie.originalMaxAge / 1000)
end
if ttl <= 0 then redis.call('DEL', KEYS[1]) return false end
redis.call('EXPIRE', KEYS[1], ttl)
return v
)lua";

// KEYS[1] session; ARGV[1] the document as read, ARGV[2] the new one,
// ARGV[3] TTL seconds. 1 written; else the document as it is now (nil:
// gone), so a retry needs no second read.
constexpr char kCompareAndSetScript[] = R"lua(
local now = redis.call('GET', KEYS[1])
if now ~= ARGV[1] then return now end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
)lua";

constexpr int kWriteTries = 5;
constexpr int kCreateTries = 3;

std::string IsoTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

int64_t SecondsUp(absl::Duration d) {
  return std::max<int64_t>(
      1, absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1))));
}

absl::Status CheckFields(const SessionFields& fields) {
  for (const auto& [name, value] : fields) {
    if (name.empty() || name == "cookie") {
      return absl::InvalidArgumentError(
          absl::StrCat("session field \"", name,
                       "\": reserved in the connect-redis layout"));
    }
    if (!IsJsonValue(value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "session field \"", name,
          "\": the value must be JSON text (a string ",
          "is written \"\\\"text\\\"\"), got '", value.substr(0, 64), "'"));
    }
  }
  return absl::OkStatus();
}

Session ToSession(std::string id, const JsonMembers& members) {
  Session s;
  s.id = std::move(id);
  for (const JsonMember& m : members) {
    if (m.name != "cookie") s.fields[m.name] = m.value;
  }
  if (const JsonMember* cookie = FindMember(members, "cookie")) {
    absl::StatusOr<JsonMembers> c = ParseJsonObject(cookie->value);
    const JsonMember* expires = c.ok() ? FindMember(*c, "expires") : nullptr;
    absl::Time t;
    std::string err;
    if (expires != nullptr && expires->value.size() > 2 &&
        absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ",
                        expires->value.substr(1, expires->value.size() - 2), &t,
                        &err)) {
      s.expires_unix = absl::ToUnixSeconds(t);
    }
  }
  return s;
}

}  // namespace

ConnectRedisSessions::ConnectRedisSessions(RedisClient& redis, Eval eval,
                                           const SessionOptions& options,
                                           std::string prefix)
    : redis_(redis),
      eval_(std::move(eval)),
      options_(options),
      prefix_(std::move(prefix)) {}

std::string ConnectRedisSessions::KeyFor(absl::string_view id) const {
  return absl::StrCat(prefix_, id);
}

std::string ConnectRedisSessions::NewCookieJson() const {
  const int64_t max_age_ms = absl::ToInt64Milliseconds(options_.idle_timeout);
  return WriteJsonObject({
      {"originalMaxAge", std::to_string(max_age_ms)},
      {"expires", JsonQuote(IsoTime(absl::Now() + options_.idle_timeout))},
      {"httpOnly", "true"},
      {"path", "\"/\""},
  });
}

int64_t ConnectRedisSessions::RefreshCookie(JsonMembers& members) const {
  const JsonMember* cookie = FindMember(members, "cookie");
  absl::StatusOr<JsonMembers> c =
      cookie ? ParseJsonObject(cookie->value) : absl::NotFoundError("");
  if (!c.ok()) return SecondsUp(options_.connect_redis_ttl);
  const JsonMember* max_age = FindMember(*c, "originalMaxAge");
  std::optional<double> ms =
      max_age ? JsonNumber(max_age->value) : std::nullopt;
  if (!ms) return SecondsUp(options_.connect_redis_ttl);
  absl::Duration d = absl::Milliseconds(*ms);
  SetMember(*c, "expires", JsonQuote(IsoTime(absl::Now() + d)));
  SetMember(members, "cookie", WriteJsonObject(*c));
  return SecondsUp(d);
}

void ConnectRedisSessions::Load(std::optional<std::string> id,
                                SessionFields initial, Callback<Session> cb) {
  if (absl::Status s = CheckFields(initial); !s.ok()) return cb(s);
  if (!id) return Create(std::move(initial), kCreateTries, std::move(cb));
  eval_(kTouchScript,
        {"", "", "1", KeyFor(*id),
         std::to_string(SecondsUp(options_.connect_redis_ttl))},
        [this, id = *id, initial = std::move(initial),
         cb = std::move(cb)](absl::StatusOr<RedisReply> r) mutable {
          if (!r.ok()) return cb(r.status());
          if (r->is_nil()) {
            return Create(std::move(initial), kCreateTries, std::move(cb));
          }
          absl::StatusOr<JsonMembers> members = ParseJsonObject(r->str);
          if (!members.ok()) return cb(members.status());
          cb(ToSession(std::move(id), *members));
        });
}

void ConnectRedisSessions::Create(SessionFields initial, int tries,
                                  Callback<Session> cb) {
  absl::StatusOr<std::string> id = NewSessionId();
  if (!id.ok()) return cb(id.status());
  JsonMembers doc = {{"cookie", NewCookieJson()}};
  for (const auto& [name, value] : initial) doc.push_back({name, value});
  std::vector<std::string> args = {
      "SET", KeyFor(*id), WriteJsonObject(doc),
      "NX",  "EX",        std::to_string(SecondsUp(options_.idle_timeout))};
  redis_.Command(
      std::move(args),
      [this, id = *id, tries, doc, initial = std::move(initial),
       cb = std::move(cb)](absl::StatusOr<RedisReply> r) mutable {
        if (!r.ok()) return cb(r.status());
        if (r->is_nil()) {  // the id is taken (2^-256): draw another
          if (tries > 1)
            return Create(std::move(initial), tries - 1, std::move(cb));
          return cb(absl::InternalError("could not draw a free session id"));
        }
        Session s = ToSession(std::move(id), doc);
        s.is_new = true;
        s.created_unix = absl::ToUnixSeconds(absl::Now());
        cb(std::move(s));
      });
}

void ConnectRedisSessions::Modify(std::string id, Mutate mutate,
                                  Callback<JsonMembers> cb) {
  auto& queue = writes_[id];
  queue.push_back([this, id, mutate = std::move(mutate),
                   cb = std::move(cb)](std::function<void()> done) mutable {
    ModifyNow(std::move(id), std::move(mutate), kWriteTries,
              [cb = std::move(cb),
               done = std::move(done)](absl::StatusOr<JsonMembers> r) mutable {
                done();
                cb(std::move(r));
              });
  });
  if (queue.size() == 1) RunNext(id);
}

void ConnectRedisSessions::RunNext(const std::string& id) {
  auto it = writes_.find(id);
  if (it == writes_.end() || it->second.empty()) return;
  it->second.front()([this, id] {
    auto it = writes_.find(id);
    it->second.pop_front();
    if (it->second.empty()) {
      writes_.erase(it);
    } else {
      RunNext(id);
    }
  });
}

void ConnectRedisSessions::ModifyNow(std::string id, Mutate mutate, int tries,
                                     Callback<JsonMembers> cb) {
  std::string key = KeyFor(id);
  eval_(
      kTouchScript,
      {"", "", "1", key, std::to_string(SecondsUp(options_.connect_redis_ttl))},
      [this, key, mutate = std::move(mutate), tries,
       cb = std::move(cb)](absl::StatusOr<RedisReply> r) mutable {
        if (!r.ok()) return cb(r.status());
        if (r->is_nil()) return cb(absl::NotFoundError("no such session"));
        Write(std::move(key), std::move(r->str), std::move(mutate), tries,
              std::move(cb));
      });
}

void ConnectRedisSessions::Write(std::string key, std::string old,
                                 Mutate mutate, int tries,
                                 Callback<JsonMembers> cb) {
  absl::StatusOr<JsonMembers> members = ParseJsonObject(old);
  if (!members.ok()) return cb(members.status());
  if (absl::Status s = mutate(*members); !s.ok()) return cb(s);
  const int64_t ttl = RefreshCookie(*members);
  // Built before the call: the callback takes `members` by move.
  std::vector<std::string> args = {
      "", "", "1", key, old, WriteJsonObject(*members), std::to_string(ttl)};
  eval_(kCompareAndSetScript, std::move(args),
        [this, key, mutate = std::move(mutate), tries,
         members = std::move(*members),
         cb = std::move(cb)](absl::StatusOr<RedisReply> w) mutable {
          if (!w.ok()) return cb(w.status());
          if (w->type == RedisReply::Type::kInteger && w->integer == 1) {
            return cb(std::move(members));
          }
          if (w->is_nil()) return cb(absl::NotFoundError("no such session"));
          if (tries <= 1) {
            return cb(absl::AbortedError(
                absl::StrCat("session changed by other writers ", kWriteTries,
                             " times in a row; try again")));
          }
          // Another writer got in first: apply the change to what it wrote.
          Write(std::move(key), std::move(w->str), std::move(mutate), tries - 1,
                std::move(cb));
        });
}

void ConnectRedisSessions::Increment(std::optional<std::string> id,
                                     std::string field, int64_t delta,
                                     Callback<SessionCounter> cb) {
  if (absl::Status s = CheckFields({{field, "0"}}); !s.ok()) return cb(s);
  auto create = [this, field, delta](Callback<SessionCounter> cb) {
    Create({{field, std::to_string(delta)}}, kCreateTries,
           [cb = std::move(cb), delta](absl::StatusOr<Session> s) {
             if (!s.ok()) return cb(s.status());
             cb(SessionCounter{s->id, true, delta, s->expires_unix});
           });
  };
  if (!id) return create(std::move(cb));
  auto value = std::make_shared<int64_t>(0);
  Modify(
      *id,
      [field, delta, value](JsonMembers& members) {
        const JsonMember* m = FindMember(members, field);
        int64_t v = 0;
        if (m != nullptr && !absl::SimpleAtoi(m->value, &v)) {
          return absl::FailedPreconditionError(
              absl::StrCat("session field \"", field,
                           "\" is not an integer: ", m->value.substr(0, 64)));
        }
        *value = v + delta;
        SetMember(members, field, std::to_string(*value));
        return absl::OkStatus();
      },
      [id = *id, value, create,
       cb = std::move(cb)](absl::StatusOr<JsonMembers> r) mutable {
        if (absl::IsNotFound(r.status())) return create(std::move(cb));
        if (!r.ok()) return cb(r.status());
        cb(SessionCounter{id, false, *value, ToSession(id, *r).expires_unix});
      });
}

void ConnectRedisSessions::Set(std::string id, SessionFields fields, Done cb) {
  if (absl::Status s = CheckFields(fields); !s.ok()) return cb(s);
  if (fields.empty()) return cb(absl::OkStatus());
  Modify(
      std::move(id),
      [fields = std::move(fields)](JsonMembers& members) {
        for (const auto& [name, value] : fields)
          SetMember(members, name, value);
        return absl::OkStatus();
      },
      [cb = std::move(cb)](absl::StatusOr<JsonMembers> r) { cb(r.status()); });
}

void ConnectRedisSessions::Destroy(std::string id, Done cb) {
  redis_.Command(
      {"DEL", KeyFor(id)},
      [cb = std::move(cb)](absl::StatusOr<RedisReply> r) { cb(r.status()); });
}

void ConnectRedisSessions::Rotate(std::string id, Callback<std::string> cb) {
  absl::StatusOr<std::string> fresh = NewSessionId();
  if (!fresh.ok()) return cb(fresh.status());
  eval_(kRotateSessionScript, {"", "", "2", KeyFor(id), KeyFor(*fresh)},
        [fresh = *fresh, cb = std::move(cb)](absl::StatusOr<RedisReply> r) {
          if (!r.ok()) return cb(r.status());
          if (r->integer == 1) return cb(fresh);
          if (r->integer == 0)
            return cb(absl::NotFoundError("no such session"));
          cb(absl::InternalError("fresh session id already taken"));
        });
}

}  // namespace corral::worker
