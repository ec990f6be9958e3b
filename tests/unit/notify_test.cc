// sd_notify messages: parsing, and the real socket with credentials.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/os/notify_socket.h"
#include "agent/supervisor/notify_message.h"

namespace corral::agent {
namespace {

TEST(NotifyMessageTest, ParsesKnownKeysAndIgnoresUnknown) {
  auto m = ParseNotifyMessage(
      "READY=1\nSTATUS=serving 3 clients\nX_CUSTOM=1\nWATCHDOG=1\n"
      "EXTEND_TIMEOUT_USEC=2500000\n");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->ready);
  EXPECT_TRUE(m->watchdog);
  EXPECT_FALSE(m->stopping);
  EXPECT_EQ(m->status, "serving 3 clients");
  EXPECT_EQ(m->extend_timeout, std::chrono::milliseconds(2500));
  EXPECT_TRUE(ParseNotifyMessage("STOPPING=1")->stopping);
  EXPECT_FALSE(ParseNotifyMessage("READY=0")->ready);
}

TEST(NotifyMessageTest, RejectsMalformedAndOversized) {
  EXPECT_FALSE(ParseNotifyMessage("READY").ok());
  EXPECT_FALSE(ParseNotifyMessage("=1").ok());
  EXPECT_FALSE(ParseNotifyMessage(std::string("READY=1\0x", 9)).ok());
  EXPECT_FALSE(ParseNotifyMessage("EXTEND_TIMEOUT_USEC=soon").ok());
  EXPECT_FALSE(
      ParseNotifyMessage(std::string(kMaxNotifyMessage + 1, 'a')).ok());
}

TEST(NotifyMessageTest, ExtendTimeoutOutOfRangeIsRejectedWithTheLimit) {
  // The largest uint64 once wrapped when turned into nanoseconds (signed
  // overflow) and the extension was silently lost.
  for (const char* value : {"18446744073709551615", "9223372036854775807",
                            "86400000001", "99999999999999999999999"}) {
    auto m = ParseNotifyMessage(std::string("EXTEND_TIMEOUT_USEC=") + value);
    ASSERT_FALSE(m.ok()) << value;
    EXPECT_EQ(m.status().code(), absl::StatusCode::kOutOfRange) << value;
    EXPECT_THAT(m.status().message(),
                ::testing::HasSubstr("over the limit of 86400000000 us (24h)"))
        << value;
  }
  auto at_limit = ParseNotifyMessage("EXTEND_TIMEOUT_USEC=86400000000");
  ASSERT_TRUE(at_limit.ok()) << at_limit.status();
  EXPECT_EQ(at_limit->extend_timeout, std::chrono::hours(24));
  EXPECT_EQ(ParseNotifyMessage("EXTEND_TIMEOUT_USEC=-1").status().code(),
            absl::StatusCode::kInvalidArgument);
}

class NotifySocketTest : public ::testing::Test {
 protected:
  void Send(const std::string& payload) {
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string& name = sock_->address();  // "@..."
    addr.sun_path[0] = '\0';
    name.copy(addr.sun_path + 1, name.size() - 1, 1);
    socklen_t len = offsetof(sockaddr_un, sun_path) + name.size();
    ASSERT_EQ(sendto(fd, payload.data(), payload.size(), 0,
                     reinterpret_cast<sockaddr*>(&addr), len),
              static_cast<ssize_t>(payload.size()));
    close(fd);
  }
  void SetUp() override {
    auto s = NotifySocket::Create(kMaxNotifyMessage);
    ASSERT_TRUE(s.ok()) << s.status();
    sock_.emplace(std::move(*s));
  }
  std::optional<NotifySocket> sock_;
};

TEST_F(NotifySocketTest, DeliversPayloadWithSenderPid) {
  EXPECT_EQ(sock_->address()[0], '@');
  EXPECT_FALSE(sock_->Receive().has_value());
  Send("READY=1");
  auto d = sock_->Receive();
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->has_credentials);
  EXPECT_EQ(d->pid, getpid());
  EXPECT_EQ(d->payload, "READY=1");
  EXPECT_FALSE(d->oversized);
}

TEST_F(NotifySocketTest, FlagsOversizedMessages) {
  Send(std::string(kMaxNotifyMessage + 100, 'x'));
  auto d = sock_->Receive();
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->oversized);
  EXPECT_EQ(d->payload.size(), kMaxNotifyMessage);
}

}  // namespace
}  // namespace corral::agent
