#include "common/duration.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

namespace corral::common {
namespace {

// Digits with at most one '.', as in "5", "1.5", ".5": a number that lacks
// only its unit.
bool IsBareNumber(absl::string_view text) {
  bool digit = false;
  bool dot = false;
  for (char c : text) {
    if (absl::ascii_isdigit(c)) {
      digit = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      return false;
    }
  }
  return digit;
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDuration(std::string_view text_std) {
  // Debian's Abseil has its own string_view type.
  const absl::string_view text(text_std.data(), text_std.size());
  absl::Duration d;
  if (!absl::ParseDuration(text, &d)) {
    if (IsBareNumber(text)) {
      return absl::InvalidArgumentError(
          "a number needs a unit, e.g. 5s or 500ms (only 0 may go without "
          "one)");
    }
    return absl::InvalidArgumentError(
        "expected a duration such as 500ms, 5s, 1m30s or 1.5h");
  }
  if (d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("expected a duration >= 0");
  }
  if (d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("expected a finite duration");
  }
  return d;
}

std::string DurationToString(absl::Duration d) {
  return absl::FormatDuration(d);
}

}  // namespace corral::common
