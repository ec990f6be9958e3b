// FUZZ_CHECK(cond, what...): the invariant check of the fuzz targets. On
// failure prints the condition and a message (absl::StrCat arguments), then
// aborts, which libFuzzer records as a crash (with the input saved) and the
// regression driver turns into a failed test. Works in every build type
// (assert() would vanish under NDEBUG).
#ifndef CORRAL_TESTS_FUZZ_FUZZ_CHECK_H_
#define CORRAL_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

#define FUZZ_CHECK(cond, ...)                                              \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::string fuzz_check_msg = absl::StrCat(__VA_ARGS__);              \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n", __FILE__, \
                   __LINE__, #cond, fuzz_check_msg.c_str());               \
      std::abort();                                                        \
    }                                                                      \
  } while (0)

namespace corral::fuzz {

// The input as text, for messages: C-escaped and cut at 200 bytes.
// (Debian's Abseil has its own string_view type, hence the overloads.)
inline std::string Shown(absl::string_view s) {
  std::string out = absl::CEscape(s.substr(0, 200));
  if (s.size() > 200) out += "...";
  return out;
}
inline std::string Shown(std::string_view s) {
  return Shown(absl::string_view(s.data(), s.size()));
}
inline std::string Shown(const std::string& s) {
  return Shown(absl::string_view(s));
}

}  // namespace corral::fuzz

#endif  // CORRAL_TESTS_FUZZ_FUZZ_CHECK_H_
