// Tests of errno to Status (common/errno_status.h), the one conversion the
// agent (agent/os/errors.h) and the worker SDK (worker/sdk/errno_status.h)
// both use.
#include "common/errno_status.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace corral::common {
namespace {

TEST(ErrnoStatusTest, MessageIsWhatThenStrerror) {
  absl::Status s = ErrnoStatus(ENOENT, "open /nope");
  EXPECT_EQ(std::string(s.message()),
            std::string("open /nope: ") + strerror(ENOENT));
}

TEST(ErrnoStatusTest, CodeFollowsTheErrno) {
  EXPECT_EQ(ErrnoStatus(ENOENT, "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoStatus(EACCES, "x").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus(EAGAIN, "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoStatus(EINVAL, "x").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoStatus(EEXIST, "x").code(), absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace corral::common
