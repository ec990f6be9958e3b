// Durations in flags and environment variables, read and printed the same
// way by the agent (--stop-timeout=20s) and by services on the worker SDK
// (corral-worker --drain-timeout=15s, SESSION_IDLE_TIMEOUT=30m).
//
// The syntax is Go's and Abseil's: a number with a unit, "500ms", "5s",
// "1m30s", "1.5h" (units ns, us, ms, s, m, h). A bare number is refused,
// because "5" could mean seconds or milliseconds; only "0" needs no unit.
//
// Pure functions, thread-safe.
#ifndef CORRAL_COMMON_DURATION_H_
#define CORRAL_COMMON_DURATION_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace corral::common {

// Parses a duration >= 0 (see above). Refuses an empty text, a bare number
// other than 0, a negative or infinite duration and anything else
// absl::ParseDuration does not read. The error is InvalidArgument whose
// message says what was expected without repeating the text, so that the
// caller can name the flag and the value first:
//   invalid --stop-timeout value '5': <message>
absl::StatusOr<absl::Duration> ParseDuration(std::string_view text);

// Prints a duration as ParseDuration reads it back: "20s", "100ms",
// "1m30s", "8h", "0".
std::string DurationToString(absl::Duration d);

}  // namespace corral::common

#endif  // CORRAL_COMMON_DURATION_H_
