// common/json: the array reader (the object reader is covered through the
// SDK's connect-redis sessions).
#include "common/json.h"

#include <gtest/gtest.h>

namespace corral::common {
namespace {

TEST(ParseJsonArrayTest, KeepsEachElementsText) {
  absl::StatusOr<std::vector<std::string>> a =
      ParseJsonArray(R"( [1, "two", {"a": [3]}, [], null, true] )");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, (std::vector<std::string>{"1", "\"two\"", "{\"a\": [3]}", "[]",
                                          "null", "true"}));
  EXPECT_TRUE(ParseJsonArray("[]")->empty());
}

TEST(ParseJsonArrayTest, RefusesWhatIsNotOneArray) {
  for (const char* bad : {"", "{}", "[1,]", "[1] 2", "[1", "[01]", "['a']"}) {
    EXPECT_FALSE(ParseJsonArray(bad).ok()) << bad;
  }
  EXPECT_EQ(ParseJsonArray("{}").status().message(), "not a JSON array: '{}'");
}

}  // namespace
}  // namespace corral::common
