// Tests of the size parser and printer (common/size.h) that the agent's
// --max-worker-memory and the worker SDK share.
#include "common/size.h"

#include <cstdint>
#include <limits>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace corral::common {
namespace {

using ::testing::HasSubstr;

// Debian's Abseil has its own string_view, which gMock's string matchers do
// not take.
std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

constexpr int64_t kMi = int64_t{1} << 20;
constexpr int64_t kGi = int64_t{1} << 30;

struct SizeCase {
  const char* text;
  int64_t bytes;
};

void PrintTo(const SizeCase& c, std::ostream* os) { *os << "size " << c.text; }

class ParseSizeOkTest : public ::testing::TestWithParam<SizeCase> {};

TEST_P(ParseSizeOkTest, Parses) {
  absl::StatusOr<int64_t> bytes = ParseSize(GetParam().text);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, GetParam().bytes);
}

INSTANTIATE_TEST_SUITE_P(
    Sizes, ParseSizeOkTest,
    ::testing::Values(
        SizeCase{"512Mi", 512 * kMi}, SizeCase{"1G", 1000000000},
        SizeCase{"1.5Gi", 1610612736}, SizeCase{"1048576", 1048576},
        SizeCase{"0", 0}, SizeCase{"1k", 1000}, SizeCase{"1Ki", 1024},
        SizeCase{"2M", 2000000}, SizeCase{"3T", 3000000000000},
        SizeCase{"1Ti", int64_t{1} << 40}, SizeCase{"1P", 1000000000000000},
        SizeCase{"1Pi", int64_t{1} << 50}, SizeCase{"9E", 9000000000000000000},
        SizeCase{"7Ei", int64_t{7} << 60}, SizeCase{".5Gi", 512 * kMi},
        SizeCase{"0.5k", 500}, SizeCase{"1.", 1},
        // Fractions of a byte round up, as in Kubernetes.
        SizeCase{"1.5", 2}, SizeCase{"1.0001k", 1001},
        SizeCase{"9223372036854775807", std::numeric_limits<int64_t>::max()}));

struct BadSizeCase {
  const char* text;
  const char* message;
};

void PrintTo(const BadSizeCase& c, std::ostream* os) {
  *os << "size " << c.text;
}

class ParseSizeErrorTest : public ::testing::TestWithParam<BadSizeCase> {};

TEST_P(ParseSizeErrorTest, SaysWhatIsWrong) {
  absl::StatusOr<int64_t> bytes = ParseSize(GetParam().text);
  ASSERT_FALSE(bytes.ok()) << GetParam().text << " -> " << *bytes;
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(bytes.status()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Sizes, ParseSizeErrorTest,
    ::testing::Values(
        BadSizeCase{"12X",
                    "invalid size \"12X\": unknown suffix \"X\"; use a "
                    "number of bytes, or k, M, G"},
        BadSizeCase{"-1", "invalid size \"-1\": a size cannot be negative"},
        BadSizeCase{"", "empty size; use a number of bytes"},
        BadSizeCase{"9223372036854775808",
                    "larger than the maximum 9223372036854775807 bytes"},
        BadSizeCase{"99999999999999999999999", "larger than the maximum"},
        BadSizeCase{"8Ei", "larger than the maximum"},
        BadSizeCase{"10E", "larger than the maximum"},
        BadSizeCase{"512m", "did you mean 512M or 512Mi? \"m\" is milli"},
        BadSizeCase{"512MB", "did you mean 512M or 512Mi?"},
        BadSizeCase{"2GiB", "did you mean 2G or 2Gi?"},
        BadSizeCase{"1K", "did you mean 1k or 1Ki?"},
        BadSizeCase{"1g", "did you mean 1G or 1Gi?"},
        BadSizeCase{"1e9", "unknown suffix \"e9\""},
        BadSizeCase{"+1", "not a number"}, BadSizeCase{" 1G", "not a number"},
        BadSizeCase{"1 G", "unknown suffix \" G\""},
        BadSizeCase{"Gi", "not a number"}, BadSizeCase{".", "not a number"},
        BadSizeCase{"1.2.3", "unknown suffix \".3\""},
        BadSizeCase{"1.0000000000000000001", "too many decimal places"}));

TEST(FormatSizeTest, ExactMultiplesAndDecimals) {
  EXPECT_EQ(FormatSize(0), "0");
  EXPECT_EQ(FormatSize(512), "512");
  EXPECT_EQ(FormatSize(1000), "1000");
  EXPECT_EQ(FormatSize(1024), "1Ki");
  EXPECT_EQ(FormatSize(1500), "1.46Ki");
  EXPECT_EQ(FormatSize(512 * kMi), "512Mi");
  EXPECT_EQ(FormatSize(kGi), "1Gi");
  EXPECT_EQ(FormatSize(1610612736), "1.50Gi");
  EXPECT_EQ(FormatSize(int64_t{3} << 60), "3Ei");
}

TEST(SizeRoundTripTest, FormatSizeOfAnExactMultipleParsesBack) {
  for (int64_t bytes : {int64_t{0}, int64_t{512}, int64_t{1024}, 512 * kMi, kGi,
                        int64_t{7} << 60}) {
    absl::StatusOr<int64_t> back = ParseSize(FormatSize(bytes));
    ASSERT_TRUE(back.ok()) << FormatSize(bytes) << ": " << back.status();
    EXPECT_EQ(*back, bytes) << FormatSize(bytes);
  }
}

}  // namespace
}  // namespace corral::common
