// DropStartupCodePages against the real kernel: it unmaps clean read-only
// file pages (and they read back the same), and leaves private copies and
// writable mappings alone.
#include "agent/os/resident_code.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace corral::agent {
namespace {

constexpr size_t kPages = 16;

// Rss (KiB) of the mapping that starts at `addr`, from /proc/self/smaps;
// -1 when there is no such mapping.
int64_t RssOfMapping(const void* addr) {
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool ours = false;
  while (std::getline(in, line)) {
    // A mapping's header starts "begin-end perms"; its fields "Name: value".
    const std::string first = line.substr(0, line.find(' '));
    if (first.find(':') == std::string::npos) {
      ours = std::strtoull(first.c_str(), nullptr, 16) ==
             reinterpret_cast<uintptr_t>(addr);
      continue;
    }
    if (ours && first == "Rss:") return std::atoll(line.c_str() + 4);
  }
  return -1;
}

class ResidentCodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const char* tmp = std::getenv("TMPDIR");
    path_ = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") +
            "/corral-resident-XXXXXX";
    fd_ = mkstemp(path_.data());
    ASSERT_GE(fd_, 0);
    std::string data(kPages * page_, '\0');
    for (size_t i = 0; i < data.size(); ++i)
      data[i] = static_cast<char>(i % 251);
    ASSERT_EQ(write(fd_, data.data(), data.size()),
              static_cast<ssize_t>(data.size()));
    expected_ = data;
  }
  void TearDown() override {
    for (void* m : maps_) munmap(m, kPages * page_);
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
  }

  char* Map(int prot) {
    void* m = mmap(nullptr, kPages * page_, prot, MAP_PRIVATE, fd_, 0);
    EXPECT_NE(m, MAP_FAILED);
    maps_.push_back(m);
    return static_cast<char*>(m);
  }

  // Reads every page, so each is resident (volatile: the reads happen).
  static void Touch(const char* p, size_t n) {
    const volatile char* v = p;
    for (size_t i = 0; i < n; i += 512) (void)v[i];
  }

  size_t page_ = 4096;
  std::string path_;
  int fd_ = -1;
  std::string expected_;
  std::vector<void*> maps_;
};

TEST_F(ResidentCodeTest, CleanReadOnlyPagesLeaveTheRssAndReadBackTheSame) {
  const char* ro = Map(PROT_READ);
  Touch(ro, kPages * page_);
  ASSERT_EQ(RssOfMapping(ro), static_cast<int64_t>(kPages * page_ / 1024));

  absl::StatusOr<int64_t> dropped = DropStartupCodePages();
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_GE(*dropped, static_cast<int64_t>(kPages * page_ / 1024));
  EXPECT_EQ(RssOfMapping(ro), 0);
  EXPECT_EQ(std::string(ro, kPages * page_), expected_);
  EXPECT_EQ(RssOfMapping(ro), static_cast<int64_t>(kPages * page_ / 1024));
}

TEST_F(ResidentCodeTest, AMappingWithAPrivateCopyIsLeftAlone) {
  // Like relocated read-only data: written, then made read-only.
  char* relro = Map(PROT_READ | PROT_WRITE);
  Touch(relro, kPages * page_);
  relro[0] = 'X';
  ASSERT_EQ(mprotect(relro, kPages * page_, PROT_READ), 0);
  const int64_t before = RssOfMapping(relro);

  ASSERT_TRUE(DropStartupCodePages().ok());
  EXPECT_EQ(RssOfMapping(relro), before);
  EXPECT_EQ(relro[0], 'X');
  EXPECT_EQ(std::string(relro + 1, kPages * page_ - 1), expected_.substr(1));
}

TEST_F(ResidentCodeTest, AWritableMappingIsLeftAlone) {
  char* rw = Map(PROT_READ | PROT_WRITE);
  Touch(rw, kPages * page_);
  const int64_t before = RssOfMapping(rw);
  ASSERT_GT(before, 0);

  ASSERT_TRUE(DropStartupCodePages().ok());
  EXPECT_EQ(RssOfMapping(rw), before);
}

}  // namespace
}  // namespace corral::agent
