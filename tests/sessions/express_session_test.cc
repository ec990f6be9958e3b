// Sessions as express-session writes them: signed cookies (vectors from
// the npm cookie-signature package), the JSON member reader, and
// SessionStore's connect-redis format and signed corral cookies against a
// real redis-server. The Node side of the same formats is tested with the
// real npm packages in worker/node/test/interop.test.js.
#include <chrono>
#include <memory>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "gtest/gtest.h"
#include "tests/sessions/redis_server.h"
#include "worker/sdk/cookie_signature.h"
#include "worker/sdk/json_object.h"
#include "worker/sdk/redis_client.h"
#include "worker/sdk/session_id.h"
#include "worker/sdk/session_store.h"

namespace corral::worker {
namespace {

using corral::testing::RedisServer;
using corral::testing::RunUntil;

TEST(CookieSignatureTest, MatchesCookieSignaturePackage) {
  // require('cookie-signature').sign('hello', 'tobiiscool')
  EXPECT_EQ(SignSessionId("hello", "tobiiscool"),
            "s:hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI");
  // cookie.serialize('connect.sid', 's:' + sign(id, 'keyboard cat'))
  const std::string id = "AbCdEfGhIjKlMnOpQrStUvWxYz012345";
  EXPECT_EQ(SignedCookieValue(id, "keyboard cat"),
            "s%3AAbCdEfGhIjKlMnOpQrStUvWxYz012345."
            "Rep3%2FFvg0qav4rmx0KMMPMPLPqwiVeA7cAX7m1k6618");
  EXPECT_EQ(IdFromSignedCookie(SignedCookieValue(id, "keyboard cat"),
                               {"new secret", "keyboard cat"}),
            id);
}

TEST(CookieSignatureTest, RefusesWhatNoSecretSigned) {
  const std::vector<std::string> secrets = {"keyboard cat"};
  const std::string good = SignSessionId("abc", "keyboard cat");
  EXPECT_EQ(UnsignSessionId(good, secrets), "abc");
  EXPECT_EQ(UnsignSessionId(good, {"other"}), std::nullopt);
  EXPECT_EQ(UnsignSessionId("abc", secrets), std::nullopt);  // unsigned
  EXPECT_EQ(UnsignSessionId("s:abc", secrets), std::nullopt);
  EXPECT_EQ(UnsignSessionId(good.substr(0, good.size() - 1), secrets),
            std::nullopt);
  std::string tampered = good;
  tampered[2] = 'x';  // another id, same signature
  EXPECT_EQ(UnsignSessionId(tampered, secrets), std::nullopt);
}

TEST(CookieSignatureTest, UriComponentCoding) {
  EXPECT_EQ(EncodeUriComponent("s:a+b/c=d e~*'()!"),
            "s%3Aa%2Bb%2Fc%3Dd%20e~*'()!");
  EXPECT_EQ(DecodeUriComponent("s%3Aa%2bb"), "s:a+b");
  EXPECT_EQ(DecodeUriComponent("100%"), "100%");  // malformed: as is
  EXPECT_EQ(DecodeUriComponent("%zz"), "%zz");
}

TEST(JsonObjectTest, KeepsValuesAsWritten) {
  auto m = ParseJsonObject(
      R"( {"cookie":{"originalMaxAge":60000,"path":"/"}, "n":1.50, "e":[],)"
      R"("s":"a\"\u00e9", "z":null } )");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 5u);
  EXPECT_EQ(FindMember(*m, "n")->value, "1.50");
  EXPECT_EQ(FindMember(*m, "e")->value, "[]");
  EXPECT_EQ(FindMember(*m, "s")->value, R"("a\"\u00e9")");
  EXPECT_EQ(JsonNumber(FindMember(*m, "n")->value), 1.5);
  EXPECT_EQ(JsonNumber("\"1\""), std::nullopt);
  SetMember(*m, "n", "2");
  RemoveMember(*m, "z");
  SetMember(*m, "new", JsonQuote("x\ny"));
  EXPECT_EQ(WriteJsonObject(*m),
            R"({"cookie":{"originalMaxAge":60000,"path":"/"},"n":2,"e":[],)"
            R"("s":"a\"\u00e9","new":"x\ny"})");
  for (const char* bad : {"", "[]", "{", "{\"a\":}", "{\"a\":1,}", "{a:1}",
                          "{\"a\":1} x", "{\"a\":01}", "\"s\""}) {
    EXPECT_FALSE(ParseJsonObject(bad).ok()) << bad;
  }
  EXPECT_TRUE(IsJsonValue(" 7 "));
  EXPECT_FALSE(IsJsonValue("bob"));
}

class ExpressSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.running());
    auto config = ParseRedisUrl(redis_.url());
    ASSERT_TRUE(config.ok());
    client_ = std::make_unique<RedisClient>(io_, *config);
    client_->Start();
    ASSERT_TRUE(RunUntil(io_, [&] { return client_->up(); }));
  }

  std::unique_ptr<SessionStore> Store(SessionFormat format,
                                      std::vector<std::string> secrets) {
    SessionOptions o;
    o.format = format;
    o.cookie_secrets = std::move(secrets);
    o.idle_timeout = absl::Seconds(100);
    return std::make_unique<SessionStore>(*client_, o);
  }

  template <typename T, typename Call>
  absl::StatusOr<T> Wait(Call call) {
    std::optional<absl::StatusOr<T>> out;
    call([&](absl::StatusOr<T> r) { out = std::move(r); });
    EXPECT_TRUE(RunUntil(io_, [&] { return out.has_value(); }));
    return out.value_or(absl::DeadlineExceededError("no answer"));
  }

  absl::StatusOr<SessionCounter> Increment(SessionStore& s,
                                           const std::string& cookie) {
    return Wait<SessionCounter>(
        [&](auto cb) { s.Increment(cookie, "views", 1, cb); });
  }

  absl::Status Set(SessionStore& s, const std::string& cookie,
                   SessionFields f) {
    std::optional<absl::Status> out;
    s.Set(cookie, std::move(f), [&](absl::Status st) { out = st; });
    EXPECT_TRUE(RunUntil(io_, [&] { return out.has_value(); }));
    return out.value_or(absl::DeadlineExceededError("no answer"));
  }

  RedisServer redis_;
  boost::asio::io_context io_;
  std::unique_ptr<RedisClient> client_;
};

TEST_F(ExpressSessionTest, ConnectRedisDocumentsAndSignedCookies) {
  auto store = Store(SessionFormat::kConnectRedis, {"keyboard cat"});
  auto first = Increment(*store, "");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->is_new);
  ASSERT_TRUE(absl::StartsWith(first->id, "s%3A")) << first->id;
  std::optional<std::string> id = store->IdFromCookie(first->id);
  ASSERT_TRUE(id.has_value());
  std::string doc = redis_.Command({"GET", "sess:" + *id});
  auto members = ParseJsonObject(doc);
  ASSERT_TRUE(members.ok()) << doc;
  EXPECT_EQ(FindMember(*members, "views")->value, "1");
  auto cookie = ParseJsonObject(FindMember(*members, "cookie")->value);
  ASSERT_TRUE(cookie.ok());
  EXPECT_EQ(FindMember(*cookie, "originalMaxAge")->value, "100000");
  // A member the C++ side knows nothing about survives byte for byte.
  redis_.Command({"SET", "sess:" + *id,
                  absl::StrCat(doc.substr(0, doc.size() - 1),
                               R"(,"cart":{"items":[],"total":1.50}})")});
  auto second = Increment(*store, first->id);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->is_new);
  EXPECT_EQ(second->value, 2);
  EXPECT_EQ(second->id, first->id);
  EXPECT_TRUE(absl::StrContains(redis_.Command({"GET", "sess:" + *id}),
                                R"("cart":{"items":[],"total":1.50})"));
  ASSERT_TRUE(Set(*store, first->id, {{"user", "\"bob\""}}).ok());
  EXPECT_FALSE(Set(*store, first->id, {{"user", "bob"}}).ok());  // not JSON
  auto session = Wait<Session>([&](auto cb) { store->Load(first->id, cb); });
  ASSERT_TRUE(session.ok());
  EXPECT_EQ(session->fields["user"], "\"bob\"");
  EXPECT_EQ(session->fields["views"], "2");
  EXPECT_GT(session->expires_unix, 0);
  // Sliding TTL from the cookie's maxAge (100 s), as connect-redis
  // touches.
  int64_t ttl = 0;
  ASSERT_TRUE(absl::SimpleAtoi(redis_.Command({"TTL", "sess:" + *id}), &ttl));
  EXPECT_GT(ttl, 90);
  EXPECT_LE(ttl, 100);
  // Another secret, or an unsigned id: a new session, never an error.
  auto other = Store(SessionFormat::kConnectRedis, {"other secret"});
  auto fresh = Increment(*other, first->id);
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(fresh->is_new);
  EXPECT_TRUE(Increment(*store, *id)->is_new);
}

TEST_F(ExpressSessionTest, ConcurrentIncrementsLoseNothing) {
  auto a = Store(SessionFormat::kConnectRedis, {"s"});
  auto b = Store(SessionFormat::kConnectRedis, {"s"});
  auto first = Increment(*a, "");
  ASSERT_TRUE(first.ok());
  int done = 0, failed = 0;
  for (int i = 0; i < 100; ++i) {
    for (SessionStore* s : {a.get(), b.get()}) {
      s->Increment(first->id, "views", 1, [&](auto r) {
        ++done;
        if (!r.ok()) ++failed;
      });
    }
  }
  ASSERT_TRUE(RunUntil(
      io_, [&] { return done == 200; }, std::chrono::seconds(20)));
  // Each store writes one at a time; the two race each other and retry.
  EXPECT_EQ(failed, 0);
  auto last = Increment(*a, first->id);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->value, 202);
}

TEST_F(ExpressSessionTest, SignedCorralCookies) {
  auto store = Store(SessionFormat::kCorral, {"secret"});
  auto first = Increment(*store, "");
  ASSERT_TRUE(first.ok());
  std::optional<std::string> id = store->IdFromCookie(first->id);
  ASSERT_TRUE(id.has_value());
  EXPECT_TRUE(IsWellFormedSessionId(*id));
  EXPECT_EQ(store->CookieValue(*id), first->id);
  EXPECT_EQ(Increment(*store, first->id)->value, 2);
  // The bare id is not accepted once cookies are signed.
  EXPECT_TRUE(Increment(*store, *id)->is_new);
  // Rotation keeps the session, under a new signed cookie.
  auto rotated =
      Wait<std::string>([&](auto cb) { store->Rotate(first->id, cb); });
  ASSERT_TRUE(rotated.ok());
  EXPECT_TRUE(absl::StartsWith(*rotated, "s%3A"));
  EXPECT_EQ(Increment(*store, *rotated)->value, 3);
}

TEST(SessionOptionsTest, Validation) {
  SessionOptions o;
  EXPECT_TRUE(ValidateSessionOptions(o).ok());
  o.format = SessionFormat::kConnectRedis;
  EXPECT_TRUE(
      absl::StrContains(ValidateSessionOptions(o).message(), "SESSION_SECRET"));
  o.cookie_secrets = {"x"};
  EXPECT_TRUE(ValidateSessionOptions(o).ok());
  o.cookie_name = "a b";
  EXPECT_FALSE(ValidateSessionOptions(o).ok());
}

TEST(SessionOptionsTest, FromEnvironment) {
  setenv("SESSION_FORMAT", "connect-redis", 1);
  setenv("SESSION_SECRET", "new", 1);
  setenv("SESSION_OLD_SECRETS", "old1,old2", 1);
  auto o = SessionOptionsFromEnvironment();
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->format, SessionFormat::kConnectRedis);
  EXPECT_EQ(o->cookie_name, "connect.sid");
  EXPECT_EQ(o->cookie_secrets,
            (std::vector<std::string>{"new", "old1", "old2"}));
  unsetenv("SESSION_SECRET");
  unsetenv("SESSION_OLD_SECRETS");
  EXPECT_TRUE(absl::StrContains(
      SessionOptionsFromEnvironment().status().message(), "SESSION_SECRET"));
  setenv("SESSION_FORMAT", "cookies", 1);
  EXPECT_TRUE(
      absl::StrContains(SessionOptionsFromEnvironment().status().message(),
                        "SESSION_FORMAT=\"cookies\""));
  unsetenv("SESSION_FORMAT");
  setenv("SESSION_IDLE_TIMEOUT", "soon", 1);
  EXPECT_TRUE(
      absl::StrContains(SessionOptionsFromEnvironment().status().message(),
                        "SESSION_IDLE_TIMEOUT=\"soon\""));
  unsetenv("SESSION_IDLE_TIMEOUT");
  EXPECT_TRUE(SessionOptionsFromEnvironment().ok());
}

// The names and format the Node store reads too (worker/node, CorralStore;
// interop.test.js holds both sides to the same TTLs).
TEST(SessionOptionsTest, TimeoutsAreDurations) {
  setenv("SESSION_IDLE_TIMEOUT", "90s", 1);
  setenv("SESSION_ABSOLUTE_TIMEOUT", "2h", 1);
  auto o = SessionOptionsFromEnvironment();
  unsetenv("SESSION_IDLE_TIMEOUT");
  unsetenv("SESSION_ABSOLUTE_TIMEOUT");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->idle_timeout, absl::Seconds(90));
  EXPECT_EQ(o->absolute_timeout, absl::Hours(2));
  // A bare number could be seconds or milliseconds: refused, named.
  setenv("SESSION_IDLE_TIMEOUT", "1800", 1);
  EXPECT_TRUE(
      absl::StrContains(SessionOptionsFromEnvironment().status().message(),
                        "SESSION_IDLE_TIMEOUT=\"1800\""));
  unsetenv("SESSION_IDLE_TIMEOUT");
}

}  // namespace
}  // namespace corral::worker
