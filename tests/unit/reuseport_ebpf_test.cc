// --balance=round-robin against the real kernel: the verifier accepts the
// program and a group of reuseport listeners gets new connections in turn.
// Skipped (with the kernel's reason) when this process may not load eBPF.
#include "agent/os/reuseport_ebpf.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "agent/os/fd.h"
#include "agent/os/reuseport.h"
#include "agent/supervisor/round_robin.h"

namespace corral::agent {
namespace {

using ::testing::ElementsAre;

class ReuseportEbpfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EbpfRoundRobin>> rr =
        EbpfRoundRobin::Create();
    if (!rr.ok()) {
      ASSERT_EQ(rr.status().code(), absl::StatusCode::kPermissionDenied)
          << rr.status();
      // The message names the capability (what the agent prints too).
      ASSERT_THAT(std::string(rr.status().message()),
                  ::testing::HasSubstr("CAP_BPF"));
      GTEST_SKIP() << rr.status();
    }
    rr_ = std::move(*rr);
    absl::StatusOr<TcpListener> first =
        OpenReuseportMember("127.0.0.1", 0, /*probe=*/true);
    ASSERT_TRUE(first.ok()) << first.status();
    port_ = first->port;
    fds_.push_back(first->fd);
    for (int i = 1; i < 3; ++i) {
      absl::StatusOr<TcpListener> m =
          OpenReuseportMember("127.0.0.1", port_, /*probe=*/false);
      ASSERT_TRUE(m.ok()) << m.status();
      fds_.push_back(m->fd);
    }
    for (size_t slot = 0; slot < fds_.size(); ++slot) {
      ASSERT_TRUE(rr_->AddSocket(static_cast<int>(slot), fds_[slot]).ok());
    }
  }
  absl::Status Steer(int group_fd, const std::vector<int>& table) {
    return rr_->Attach(
        group_fd,
        BuildRoundRobinProgram(rr_->counter_map(), rr_->sockets_map(), table));
  }
  void TearDown() override {
    for (int fd : fds_) CloseFd(fd);
  }

  // Connects once and returns the slot whose listener has the connection
  // (-1: none within a second).
  int ConnectAndFind() {
    const int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    std::vector<pollfd> pfds;
    for (int fd : fds_) pfds.push_back({fd, POLLIN, 0});
    int found = -1;
    if (poll(pfds.data(), pfds.size(), 1000) > 0) {
      for (size_t i = 0; i < pfds.size(); ++i) {
        if (!(pfds[i].revents & POLLIN)) continue;
        const int a = accept4(fds_[i], nullptr, nullptr, SOCK_CLOEXEC);
        if (a >= 0) CloseFd(a);
        found = static_cast<int>(i);
        break;
      }
    }
    CloseFd(c);
    return found;
  }

  std::unique_ptr<EbpfRoundRobin> rr_;
  std::vector<int> fds_;
  int port_ = 0;
};

TEST_F(ReuseportEbpfTest, ConnectionsGoToTheTableInTurn) {
  ASSERT_TRUE(Steer(fds_[0], {0, 2}).ok());
  std::vector<int> got;
  for (int i = 0; i < 6; ++i) got.push_back(ConnectAndFind());
  // Two in turn, from wherever the counter stands; never slot 1.
  const int first = got[0];
  ASSERT_TRUE(first == 0 || first == 2) << first;
  const int second = first == 0 ? 2 : 0;
  EXPECT_THAT(got, ElementsAre(first, second, first, second, first, second));
}

TEST_F(ReuseportEbpfTest, ANewTableReplacesTheOldAtOnce) {
  ASSERT_TRUE(Steer(fds_[2], {0, 1, 2}).ok());
  ASSERT_TRUE(Steer(fds_[0], {1}).ok());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(ConnectAndFind(), 1);
}

TEST_F(ReuseportEbpfTest, AClosedSlotFallsBackToTheKernelsHash) {
  // Slot 1's socket closes while the program still names it: the select
  // fails, SK_PASS lets the kernel hash, and the connection is not dropped.
  ASSERT_TRUE(Steer(fds_[0], {1}).ok());
  CloseFd(fds_[1]);
  fds_.erase(fds_.begin() + 1);
  for (int i = 0; i < 4; ++i) EXPECT_NE(ConnectAndFind(), -1);
}

TEST_F(ReuseportEbpfTest, TheLongestTablePassesTheVerifier) {
  // 4096 workers: 3 instructions a slot, all of them verified. The table
  // names slots 0, 1, 2 over and over, so the turn is still 0, 1, 2.
  std::vector<int> table(kMaxRoundRobinTable);
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int>(i % 3);
  absl::Status s = Steer(fds_[0], table);
  ASSERT_TRUE(s.ok()) << s;
  std::vector<int> got;
  for (int i = 0; i < 3; ++i) got.push_back(ConnectAndFind());
  std::sort(got.begin(), got.end());
  EXPECT_THAT(got, ElementsAre(0, 1, 2));
}

TEST_F(ReuseportEbpfTest, ARefusedProgramSaysWhy) {
  // "r0 = 1" and no exit: the verifier's last log line is the reason.
  absl::Status s = rr_->Attach(fds_[0], {EbpfInsn{ebpf::kMov64K, 0, 0, 0, 1}});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(
      std::string(s.message()),
      ::testing::HasSubstr("BPF_PROG_LOAD, BPF_PROG_TYPE_SK_REUSEPORT"));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("exit")) << s;
}

TEST_F(ReuseportEbpfTest, ASocketOfAnotherGroupIsRefused) {
  absl::StatusOr<TcpListener> other =
      OpenTcpListener("127.0.0.1", 0, TcpListenOptions{}, "plain");
  ASSERT_TRUE(other.ok()) << other.status();
  // Not SO_REUSEPORT: the kernel will not put it in a sockarray.
  EXPECT_FALSE(rr_->AddSocket(5, other->fd).ok());
  EXPECT_FALSE(rr_->AddSocket(kMaxRoundRobinTable, fds_[0]).ok());
  CloseFd(other->fd);
}

}  // namespace
}  // namespace corral::agent
