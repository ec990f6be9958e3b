// SessionStore and RedisClient against a real redis-server on loopback.
#include "worker/sdk/session_store.h"

#include <signal.h>

#include <chrono>
#include <memory>
#include <optional>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/sessions/redis_server.h"
#include "worker/sdk/redis_client.h"
#include "worker/sdk/session_id.h"

namespace corral::worker {
namespace {

using corral::testing::RedisServer;
using corral::testing::RunUntil;
using std::chrono::milliseconds;

RedisConfig ConfigFor(const RedisServer& server) {
  auto c = ParseRedisUrl(server.url());
  EXPECT_TRUE(c.ok());
  return *c;
}

class SessionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.running());
    client_ = std::make_unique<RedisClient>(io_, ConfigFor(redis_));
    client_->Start();
    ASSERT_TRUE(RunUntil(io_, [&] { return client_->up(); }));
    store_ = std::make_unique<SessionStore>(*client_, options_);
  }

  absl::StatusOr<SessionCounter> Increment(SessionStore& store,
                                           const std::string& cookie) {
    std::optional<absl::StatusOr<SessionCounter>> out;
    store.Increment(cookie, "counter", 1, [&](auto r) { out = std::move(r); });
    EXPECT_TRUE(RunUntil(io_, [&] { return out.has_value(); }));
    return out.value_or(absl::DeadlineExceededError("no answer"));
  }

  absl::StatusOr<Session> Load(const std::string& cookie) {
    std::optional<absl::StatusOr<Session>> out;
    store_->Load(cookie, [&](auto r) { out = std::move(r); });
    EXPECT_TRUE(RunUntil(io_, [&] { return out.has_value(); }));
    return out.value_or(absl::DeadlineExceededError("no answer"));
  }

  RedisServer redis_;
  boost::asio::io_context io_;
  SessionOptions options_{absl::Seconds(100), absl::Seconds(1000)};
  std::unique_ptr<RedisClient> client_;
  std::unique_ptr<SessionStore> store_;
};

TEST_F(SessionStoreTest, CreatesThenContinues) {
  auto first = Increment(*store_, "");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->is_new);
  EXPECT_EQ(first->value, 1);
  EXPECT_TRUE(IsWellFormedSessionId(first->id));
  // An empty script cache (restart, failover) costs one EVAL, no error.
  ASSERT_EQ(redis_.Command({"SCRIPT", "FLUSH"}), "OK");
  auto second = Increment(*store_, first->id);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->is_new);
  EXPECT_EQ(second->id, first->id);
  EXPECT_EQ(second->value, 2);
}

TEST_F(SessionStoreTest, KeyHoldsOnlyTheHashAndHasTtls) {
  auto s = Increment(*store_, "");
  ASSERT_TRUE(s.ok());
  std::string key = "corral:sess:" + Sha256Hex(s->id);
  EXPECT_EQ(store_->KeyFor(s->id), key);
  EXPECT_EQ(redis_.Command({"KEYS", "*"}), key + "\n");
  EXPECT_EQ(redis_.Command({"KEYS", "*" + s->id + "*"}), "");
  EXPECT_EQ(redis_.Command({"HGET", key, "counter"}), "1");
  int ttl = std::stoi(redis_.Command({"TTL", key}));
  EXPECT_GT(ttl, 90);
  EXPECT_LE(ttl, 100);
  int64_t created = std::stoll(redis_.Command({"HGET", key, "_created"}));
  int64_t expires = std::stoll(redis_.Command({"HGET", key, "_expires"}));
  EXPECT_EQ(expires - created, 1000);
}

TEST_F(SessionStoreTest, UseSlidesTheIdleTtl) {
  auto s = Increment(*store_, "");
  ASSERT_TRUE(s.ok());
  std::string key = store_->KeyFor(s->id);
  redis_.Command({"EXPIRE", key, "5"});
  ASSERT_TRUE(Load(s->id).ok());
  EXPECT_GT(std::stoi(redis_.Command({"TTL", key})), 90);
}

TEST_F(SessionStoreTest, IdleTtlNeverPassesTheAbsoluteEnd) {
  auto s = Increment(*store_, "");
  ASSERT_TRUE(s.ok());
  std::string key = store_->KeyFor(s->id);
  int64_t created = std::stoll(redis_.Command({"HGET", key, "_created"}));
  redis_.Command({"HSET", key, "_expires", std::to_string(created + 10)});
  ASSERT_TRUE(Increment(*store_, s->id).ok());
  EXPECT_LE(std::stoi(redis_.Command({"TTL", key})), 10);
}

TEST_F(SessionStoreTest, PastAbsoluteEndStartsANewSession) {
  auto s = Increment(*store_, "");
  ASSERT_TRUE(s.ok());
  std::string key = store_->KeyFor(s->id);
  redis_.Command({"HSET", key, "_expires", "1"});  // 1970
  auto next = Increment(*store_, s->id);
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(next->is_new);
  EXPECT_NE(next->id, s->id);
  EXPECT_EQ(next->value, 1);
  EXPECT_EQ(redis_.Command({"EXISTS", key}), "0");
}

TEST_F(SessionStoreTest, MalformedOrUnknownCookieStartsANewSession) {
  for (std::string cookie :
       {std::string("garbage"), std::string(43, 'A'), std::string(200, 'x'),
        std::string("\"; DROP"), *NewSessionId()}) {
    auto s = Increment(*store_, cookie);
    ASSERT_TRUE(s.ok()) << cookie << ": " << s.status();
    EXPECT_TRUE(s->is_new);
    EXPECT_NE(s->id, cookie);
    EXPECT_EQ(s->value, 1);
  }
}

TEST_F(SessionStoreTest, LoadSetDestroy) {
  auto s = Load("");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->is_new);
  std::optional<absl::Status> done;
  store_->Set(s->id, {{"user", "ada"}}, [&](absl::Status st) { done = st; });
  ASSERT_TRUE(RunUntil(io_, [&] { return done.has_value(); }));
  ASSERT_TRUE(done->ok()) << *done;
  auto again = Load(s->id);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->is_new);
  EXPECT_EQ(again->fields["user"], "ada");
  EXPECT_GT(again->expires_unix, again->created_unix);
  done.reset();
  store_->Destroy(s->id, [&](absl::Status st) { done = st; });
  ASSERT_TRUE(RunUntil(io_, [&] { return done.has_value(); }));
  ASSERT_TRUE(done->ok());
  auto after = Load(s->id);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->is_new);
  EXPECT_TRUE(after->fields.empty());
  done.reset();
  store_->Set(s->id, {{"_expires", "1"}}, [&](absl::Status st) { done = st; });
  ASSERT_TRUE(done.has_value());  // reserved name: refused at once
  EXPECT_TRUE(absl::IsInvalidArgument(*done));
}

TEST_F(SessionStoreTest, RotateMovesTheDataToAFreshId) {
  auto s = Increment(*store_, "");
  ASSERT_TRUE(s.ok());
  std::optional<absl::StatusOr<std::string>> rotated;
  store_->Rotate(s->id, [&](auto r) { rotated = std::move(r); });
  ASSERT_TRUE(RunUntil(io_, [&] { return rotated.has_value(); }));
  ASSERT_TRUE(rotated->ok()) << rotated->status();
  EXPECT_NE(**rotated, s->id);
  auto moved = Increment(*store_, **rotated);
  ASSERT_TRUE(moved.ok());
  EXPECT_FALSE(moved->is_new);
  EXPECT_EQ(moved->value, 2);
  auto old = Increment(*store_, s->id);  // the old id no longer works
  ASSERT_TRUE(old.ok());
  EXPECT_TRUE(old->is_new);
}

TEST_F(SessionStoreTest, TwoClientsIncrementingAtOnceLoseNothing) {
  RedisClient other_client(io_, ConfigFor(redis_));
  other_client.Start();
  ASSERT_TRUE(RunUntil(io_, [&] { return other_client.up(); }));
  SessionStore other(other_client, options_);
  auto s = Increment(*store_, "");
  ASSERT_TRUE(s.ok());
  int answered = 0;
  int failed = 0;
  auto count = [&](absl::StatusOr<SessionCounter> r) {
    ++answered;
    if (!r.ok() || r->is_new) ++failed;
  };
  for (int i = 0; i < 500; ++i) {  // pipelined on both connections
    store_->Increment(s->id, "counter", 1, count);
    other.Increment(s->id, "counter", 1, count);
  }
  ASSERT_TRUE(RunUntil(io_, [&] { return answered == 1000; }));
  EXPECT_EQ(failed, 0);
  auto last = Increment(*store_, s->id);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->value, 1002);
}

TEST_F(SessionStoreTest, RedisDownIsUnavailableAndRecoversWithinASecond) {
  auto s = Increment(*store_, "");
  ASSERT_TRUE(s.ok());
  redis_.Kill();
  ASSERT_TRUE(RunUntil(io_, [&] { return !client_->up(); }));
  auto down = Increment(*store_, s->id);
  ASSERT_FALSE(down.ok());
  EXPECT_TRUE(absl::IsUnavailable(down.status())) << down.status();
  // Let the backoff reach its ceiling, then bring Redis back.
  RunUntil(
      io_, [] { return false; }, milliseconds(1500));
  // Redis without persistence comes back empty: the session is new again.
  ASSERT_TRUE(redis_.Restart());
  auto back = std::chrono::steady_clock::now();
  ASSERT_TRUE(RunUntil(io_, [&] { return client_->up(); }));
  EXPECT_LT(std::chrono::steady_clock::now() - back, milliseconds(1000));
  auto after = Increment(*store_, s->id);
  ASSERT_TRUE(after.ok()) << after.status();
}

TEST_F(SessionStoreTest, StuckRedisTimesOutAndRecovers) {
  auto s = Increment(*store_, "");
  ASSERT_TRUE(s.ok());
  redis_.Signal(SIGSTOP);  // accepts nothing, answers nothing
  auto start = std::chrono::steady_clock::now();
  auto stuck = Increment(*store_, s->id);
  auto took = std::chrono::steady_clock::now() - start;
  redis_.Signal(SIGCONT);
  ASSERT_FALSE(stuck.ok());
  EXPECT_TRUE(absl::IsUnavailable(stuck.status())) << stuck.status();
  EXPECT_TRUE(absl::StrContains(stuck.status().message(), "did not answer"))
      << stuck.status();
  EXPECT_LT(took, milliseconds(2500));
  ASSERT_TRUE(RunUntil(io_, [&] { return !client_->up(); }));
  ASSERT_TRUE(RunUntil(io_, [&] { return client_->up(); }));
  auto after = Increment(*store_, s->id);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GE(after->value, 2);  // the stuck INCR may or may not have landed
}

// Load and Increment are pipelines, not scripts (session_store.cc): these
// hold their rules against what another client can leave in Redis.

TEST_F(SessionStoreTest, IncrementOnAnEndedSessionLeavesNoStrayKey) {
  auto s = Increment(*store_, "");
  ASSERT_TRUE(s.ok());
  std::string key = store_->KeyFor(s->id);
  ASSERT_EQ(redis_.Command({"DEL", key}), "1");  // logout elsewhere
  // HINCRBY re-created the key with only the counter: not a session.
  auto next = Increment(*store_, s->id);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_TRUE(next->is_new);
  EXPECT_NE(next->id, s->id);
  EXPECT_EQ(next->value, 1);
  EXPECT_EQ(redis_.Command({"EXISTS", key}), "0");
  EXPECT_EQ(redis_.Command({"DBSIZE"}), "1");  // only the new session
}

TEST_F(SessionStoreTest, AHashWithoutExpiresIsNoSession) {
  for (bool load : {true, false}) {
    std::string id = *NewSessionId();
    std::string key = store_->KeyFor(id);
    redis_.Command({"HSET", key, "counter", "41", "user", "mallory"});
    if (load) {
      auto s = Load(id);
      ASSERT_TRUE(s.ok()) << s.status();
      EXPECT_TRUE(s->is_new);
      EXPECT_NE(s->id, id);
      EXPECT_TRUE(s->fields.empty());
    } else {
      auto c = Increment(*store_, id);
      ASSERT_TRUE(c.ok()) << c.status();
      EXPECT_TRUE(c->is_new);
      EXPECT_NE(c->id, id);
      EXPECT_EQ(c->value, 1);
    }
    EXPECT_EQ(redis_.Command({"EXISTS", key}), "0") << (load ? "Load" : "Incr");
  }
}

TEST_F(SessionStoreTest, LoadNearTheAbsoluteEndCapsTheTtl) {
  auto s = Increment(*store_, "");
  ASSERT_TRUE(s.ok());
  std::string key = store_->KeyFor(s->id);
  int64_t created = std::stoll(redis_.Command({"HGET", key, "_created"}));
  redis_.Command({"HSET", key, "_expires", std::to_string(created + 10)});
  auto loaded = Load(s->id);
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->is_new);
  EXPECT_EQ(loaded->expires_unix, created + 10);
  // Answered only after EXPIREAT: the TTL is capped when we hear back.
  EXPECT_LE(std::stoi(redis_.Command({"TTL", key})), 10);
}

TEST_F(SessionStoreTest, NearTheAbsoluteEndTheIdleTimeoutStillHolds) {
  // 150 s left, idle 100 s: the cap must not stretch the TTL to 150 s.
  auto s = Increment(*store_, "");
  ASSERT_TRUE(s.ok());
  std::string key = store_->KeyFor(s->id);
  int64_t created = std::stoll(redis_.Command({"HGET", key, "_created"}));
  redis_.Command({"HSET", key, "_expires", std::to_string(created + 150)});
  ASSERT_TRUE(Increment(*store_, s->id).ok());
  EXPECT_LE(std::stoi(redis_.Command({"TTL", key})), 100);
}

TEST_F(SessionStoreTest, RenewsTheIdleTimeoutAtMostEveryInterval) {
  // Idle 64 s: renewed at most every second by one store.
  SessionStore store(*client_, {absl::Seconds(64), absl::Seconds(1000)});
  auto s = Increment(store, "");
  ASSERT_TRUE(s.ok());
  std::string key = store.KeyFor(s->id);
  ASSERT_TRUE(Increment(store, s->id).ok());  // renews: first use here
  const auto renewed = std::chrono::steady_clock::now();
  EXPECT_GT(std::stoi(redis_.Command({"TTL", key})), 60);
  redis_.Command({"EXPIRE", key, "30"});
  auto c = Increment(store, s->id);  // within the interval: left as is
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->value, 3);
  if (std::chrono::steady_clock::now() - renewed < milliseconds(900)) {
    EXPECT_LE(std::stoi(redis_.Command({"TTL", key})), 30);
  }
  // Later uses renew it again, not before the interval has passed.
  int64_t value = 3;
  bool again = false;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!again && std::chrono::steady_clock::now() < deadline) {
    auto next = Increment(store, s->id);
    ASSERT_TRUE(next.ok());
    ASSERT_FALSE(next->is_new);
    EXPECT_EQ(next->value, ++value);
    again = std::stoi(redis_.Command({"TTL", key})) > 60;
    if (!again)
      RunUntil(
          io_, [] { return false; }, milliseconds(50));
  }
  ASSERT_TRUE(again) << "the idle timeout was not renewed within 5 s";
  EXPECT_GE(std::chrono::steady_clock::now() - renewed, milliseconds(990));
}

TEST_F(SessionStoreTest, RotateRefusesAnEndedOrStraySession) {
  std::string id = *NewSessionId();
  redis_.Command({"HSET", store_->KeyFor(id), "counter", "7"});  // stray
  std::optional<absl::StatusOr<std::string>> rotated;
  store_->Rotate(id, [&](auto r) { rotated = std::move(r); });
  ASSERT_TRUE(RunUntil(io_, [&] { return rotated.has_value(); }));
  EXPECT_TRUE(absl::IsNotFound(rotated->status())) << rotated->status();
  EXPECT_EQ(redis_.Command({"DBSIZE"}), "1");  // nothing renamed
}

TEST(RedisClientTest, PipelineRepliesInOrderWithErrorsAsElements) {
  RedisServer redis;
  boost::asio::io_context io;
  RedisClient client(io, ConfigFor(redis));
  client.Start();
  // Sent while connecting: waits for the connection, as a whole.
  std::optional<absl::StatusOr<RedisReply>> r;
  client.Pipeline({{"SET", "k", "v"}, {"HGET", "k", "f"}, {"GET", "k"}},
                  [&](auto x) { r = std::move(x); });
  ASSERT_TRUE(RunUntil(io, [&] { return r.has_value(); }));
  ASSERT_TRUE(r->ok()) << r->status();
  ASSERT_EQ((*r)->elements.size(), 3u);
  EXPECT_EQ((*r)->elements[0].str, "OK");
  EXPECT_EQ((*r)->elements[1].type, RedisReply::Type::kError);
  EXPECT_TRUE(absl::StartsWith((*r)->elements[1].str, "WRONGTYPE"))
      << (*r)->elements[1].str;
  EXPECT_EQ((*r)->elements[2].str, "v");
}

TEST(RedisClientTest, PipelineOnAReplicaIsUnavailable) {
  RedisServer master;
  RedisServer replica(
      {"--replicaof", "127.0.0.1", std::to_string(master.port())});
  boost::asio::io_context io;
  auto config = ConfigFor(replica);
  RedisClient client(io, config);
  client.Start();
  ASSERT_TRUE(RunUntil(io, [&] { return client.up(); }));
  std::optional<absl::StatusOr<RedisReply>> r;
  client.Pipeline({{"GET", "k"}, {"SET", "k", "v"}},
                  [&](auto x) { r = std::move(x); });
  ASSERT_TRUE(RunUntil(io, [&] { return r.has_value(); }));
  // READONLY as a Status, as for one command: the client goes looking for
  // the master instead of failing every write.
  EXPECT_TRUE(absl::IsUnavailable(r->status())) << r->status();
  EXPECT_TRUE(absl::StrContains(r->status().message(), "READONLY"))
      << r->status();
}

TEST(RedisClientTest, AuthAndSelect) {
  RedisServer redis({"--requirepass", "pw"});
  boost::asio::io_context io;
  auto config = ParseRedisUrl(
      "redis://:pw@127.0.0.1:" + std::to_string(redis.port()) + "/3");
  ASSERT_TRUE(config.ok());
  RedisClient client(io, *config);
  client.Start();
  ASSERT_TRUE(RunUntil(io, [&] { return client.up(); }));
  std::optional<absl::StatusOr<RedisReply>> r;
  client.Command({"SET", "k", "v"}, [&](auto x) { r = std::move(x); });
  ASSERT_TRUE(RunUntil(io, [&] { return r.has_value(); }));
  ASSERT_TRUE(r->ok());
  EXPECT_EQ(redis.Command({"SELECT", "3"}, "pw"), "OK");
  EXPECT_EQ(redis.Command({"DBSIZE"}, "pw"), "0");  // db 0: our key is in 3
  // A wrong password is a clear, named failure, not a hang.
  config->password = "wrong";
  RedisClient bad(io, *config);
  bad.Start();
  ASSERT_TRUE(
      RunUntil(io, [&] { return bad.state() == RedisClient::State::kDown; }));
  EXPECT_TRUE(absl::StrContains(bad.last_error(), "AUTH failed"))
      << bad.last_error();
}

TEST(RedisClientTest, UnixSocket) {
  std::string sock =
      "/tmp/corral-redis-test-" + std::to_string(getpid()) + ".sock";
  RedisServer redis({"--unixsocket", sock});
  boost::asio::io_context io;
  auto config = ParseRedisUrl("unix:" + sock);
  ASSERT_TRUE(config.ok());
  RedisClient client(io, *config);
  client.Start();
  ASSERT_TRUE(RunUntil(io, [&] { return client.up(); }));
  EXPECT_EQ(client.endpoint(), "unix:" + sock);
}

TEST(RedisClientTest, UnreachableFailsFastWithAClearMessage) {
  boost::asio::io_context io;
  auto config = ParseRedisUrl("redis://127.0.0.1:" +
                              std::to_string(corral::testing::FreePort()));
  RedisClient client(io, *config);
  client.Start();
  ASSERT_TRUE(RunUntil(
      io, [&] { return client.state() == RedisClient::State::kDown; }));
  std::optional<absl::StatusOr<RedisReply>> r;
  client.Command({"PING"}, [&](auto x) { r = std::move(x); });
  ASSERT_TRUE(RunUntil(
      io, [&] { return r.has_value(); }, milliseconds(100)));
  EXPECT_TRUE(absl::IsUnavailable(r->status()));
  EXPECT_TRUE(absl::StrContains(r->status().message(), "Connection refused"))
      << r->status();
}

}  // namespace
}  // namespace corral::worker
