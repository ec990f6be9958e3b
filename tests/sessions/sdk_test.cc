// Unit tests of the worker SDK's pure parts and of its kernel-facing ones
// against the real kernel (sockets, sd_notify datagrams).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <set>

#include "gtest/gtest.h"
#include "worker/sdk/listeners.h"
#include "worker/sdk/notifier.h"
#include "worker/sdk/redis_config.h"
#include "worker/sdk/session_id.h"

namespace corral::worker {
namespace {

TEST(ListenEnvTest, AbsentMeansNothing) {
  auto plan = ParseListenEnv({}, 42);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->count, 0);
  EXPECT_EQ(plan->ignored_reason, "");
}

TEST(ListenEnvTest, OursIsTaken) {
  auto plan = ParseListenEnv({"42", "2", "http:admin"}, 42);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->count, 2);
  EXPECT_EQ(plan->names, (std::vector<std::string>{"http", "admin"}));
}

TEST(ListenEnvTest, WrongPidIsIgnoredNotAnError) {
  auto plan = ParseListenEnv({"41", "1", std::nullopt}, 42);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->count, 0);
  EXPECT_NE(plan->ignored_reason.find("not this process"), std::string::npos);
}

TEST(ListenEnvTest, MissingPidIsIgnored) {
  auto plan = ParseListenEnv({std::nullopt, "1", std::nullopt}, 42);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->count, 0);
  EXPECT_FALSE(plan->ignored_reason.empty());
}

TEST(ListenEnvTest, MalformedValuesForUsAreErrors) {
  EXPECT_FALSE(ParseListenEnv({"42", "x", std::nullopt}, 42).ok());
  EXPECT_FALSE(ParseListenEnv({"42", "-1", std::nullopt}, 42).ok());
  EXPECT_FALSE(ParseListenEnv({"42", "100000", std::nullopt}, 42).ok());
  EXPECT_FALSE(ParseListenEnv({"42", "2", "onlyone"}, 42).ok());
  EXPECT_FALSE(ParseListenEnv({"42", std::nullopt, std::nullopt}, 42).ok());
}

TEST(ListenersTest, TakesInheritedSocketAndUnsetsVariables) {
  auto bound = BindTcpListener("127.0.0.1", 0);
  ASSERT_TRUE(bound.ok()) << bound.status();
  // Put it at fd 3 as the agent would (saving whatever was there).
  int saved = dup(kListenFdsStart);
  ASSERT_EQ(dup2(bound->fd, kListenFdsStart), kListenFdsStart);
  setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
  setenv("LISTEN_FDS", "1", 1);
  setenv("LISTEN_FDNAMES", "http", 1);
  auto taken = TakeInheritedListeners();
  ASSERT_TRUE(taken.ok()) << taken.status();
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_EQ((*taken)[0].fd, kListenFdsStart);
  EXPECT_EQ((*taken)[0].name, "http");
  EXPECT_EQ(getenv("LISTEN_FDS"), nullptr);
  EXPECT_EQ(getenv("LISTEN_PID"), nullptr);
  EXPECT_EQ(fcntl(kListenFdsStart, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  close(bound->fd);
  if (saved >= 0) {
    dup2(saved, kListenFdsStart);
    close(saved);
  } else {
    close(kListenFdsStart);
  }
}

TEST(ListenersTest, RejectsAnFdThatIsNotAListeningSocket) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int saved = dup(kListenFdsStart);
  dup2(fds[0], kListenFdsStart);
  setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
  setenv("LISTEN_FDS", "1", 1);
  unsetenv("LISTEN_FDNAMES");
  auto taken = TakeInheritedListeners();
  EXPECT_FALSE(taken.ok());
  EXPECT_NE(taken.status().message().find("not a socket"), std::string::npos);
  close(fds[0]);
  close(fds[1]);
  if (saved >= 0) {
    dup2(saved, kListenFdsStart);
    close(saved);
  }
}

TEST(WatchdogTest, HalfOfUsecForUs) {
  auto d = ParseWatchdogInterval("2000000", std::nullopt, 7);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, absl::Seconds(1));
  d = ParseWatchdogInterval("2000000", "7", 7);
  EXPECT_EQ(*d, absl::Seconds(1));
  d = ParseWatchdogInterval("2000000", "8", 7);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->has_value());
  EXPECT_FALSE(ParseWatchdogInterval(std::nullopt, "7", 7)->has_value());
  EXPECT_FALSE(ParseWatchdogInterval("soon", std::nullopt, 7).ok());
}

class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    path_ = "/tmp/corral-notify-test-" + std::to_string(getpid());
    unlink(path_.c_str());
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path_.c_str());
    ASSERT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    timeval tv{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  void TearDown() override {
    close(fd_);
    unlink(path_.c_str());
  }
  std::string Receive() {
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    return n < 0 ? "" : std::string(buf, n);
  }
  int fd_ = -1;
  std::string path_;
};

TEST_F(NotifierTest, SendsStates) {
  auto n = Notifier::ForSocket(path_);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_TRUE(n->enabled());
  ASSERT_TRUE(n->Ready().ok());
  EXPECT_EQ(Receive(), "READY=1");
  ASSERT_TRUE(n->Status("redis down:\nrefused").ok());
  EXPECT_EQ(Receive(), "STATUS=redis down: refused");
  ASSERT_TRUE(n->Watchdog().ok());
  EXPECT_EQ(Receive(), "WATCHDOG=1");
  ASSERT_TRUE(n->Stopping().ok());
  EXPECT_EQ(Receive(), "STOPPING=1");
}

TEST(NotifierNoSocketTest, DisabledIsANoOp) {
  auto n = Notifier::ForSocket("");
  ASSERT_TRUE(n.ok());
  EXPECT_FALSE(n->enabled());
  EXPECT_TRUE(n->Ready().ok());
  EXPECT_FALSE(Notifier::ForSocket("relative/path").ok());
}

TEST(RedisUrlTest, Forms) {
  auto c = ParseRedisUrl("redis://:s3cret@10.0.0.5:6380/2");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->address.host, "10.0.0.5");
  EXPECT_EQ(c->address.port, 6380);
  EXPECT_EQ(c->password, "s3cret");
  EXPECT_EQ(c->username, "");
  EXPECT_EQ(c->db, 2);
  c = ParseRedisUrl("redis://app:pw@redis");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->username, "app");
  EXPECT_EQ(c->address.port, 6379);
  EXPECT_EQ(c->db, 0);
  c = ParseRedisUrl("unix:/run/redis.sock?db=3&password=x");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->address.unix_path, "/run/redis.sock");
  EXPECT_EQ(c->db, 3);
  EXPECT_EQ(c->password, "x");
  c = ParseRedisUrl("redis://[::1]:7000");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->address.host, "::1");
  EXPECT_EQ(c->address.port, 7000);
}

TEST(RedisUrlTest, ErrorsHideThePassword) {
  auto c = ParseRedisUrl("redis://:hunter2@host:notaport/0");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().find("hunter2"), std::string::npos);
  EXPECT_FALSE(ParseRedisUrl("http://host").ok());
  EXPECT_FALSE(ParseRedisUrl("redis://host/x").ok());
  EXPECT_FALSE(ParseRedisUrl("unix:relative").ok());
}

TEST(RedisUrlTest, Sentinels) {
  auto s = ParseSentinelList("10.0.0.1:26379, 10.0.0.2:26380,host3");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ((*s)[1].port, 26380);
  EXPECT_EQ((*s)[2].port, 26379);
  EXPECT_FALSE(ParseSentinelList(",").ok());
  EXPECT_FALSE(ParseSentinelList("h:0").ok());
}

TEST(SessionIdTest, FreshIdsAreWellFormedAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = NewSessionId();
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(id->size(), kSessionIdLength);
    EXPECT_TRUE(IsWellFormedSessionId(*id)) << *id;
    EXPECT_TRUE(seen.insert(*id).second);
  }
}

TEST(SessionIdTest, RejectsAnythingElse) {
  std::string good = *NewSessionId();
  EXPECT_FALSE(IsWellFormedSessionId(""));
  EXPECT_FALSE(IsWellFormedSessionId(good.substr(1)));
  EXPECT_FALSE(IsWellFormedSessionId(good + "A"));
  std::string bad = good;
  bad[5] = '+';  // standard base64, not base64url
  EXPECT_FALSE(IsWellFormedSessionId(bad));
  bad = good;
  bad[10] = '=';
  EXPECT_FALSE(IsWellFormedSessionId(bad));
  bad = good;
  bad[7] = '\0';
  EXPECT_FALSE(IsWellFormedSessionId(bad));
  EXPECT_FALSE(
      IsWellFormedSessionId("../../../../etc/passwd/../../../../../a"));
}

// The last character carries 2 spare bits: of the 4 spellings that decode
// to the same 32 bytes, only the one with them clear is an id we issue.
TEST(SessionIdTest, OnlyTheCanonicalSpellingOfTheLastCharacter) {
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string id = *NewSessionId();
  for (size_t v = 0; v < alphabet.size(); ++v) {
    id.back() = alphabet[v];
    EXPECT_EQ(IsWellFormedSessionId(id), v % 4 == 0) << id;
  }
}

TEST(SessionIdTest, Sha256HexTwiceOnOneThread) {
  // The digest context is reused: a second digest must not carry state.
  EXPECT_EQ(Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(SessionIdTest, Sha256Hex) {
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace corral::worker
