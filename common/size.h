// Memory sizes as Kubernetes writes them, read and printed the same way by
// the agent (--max-worker-memory) and by services on the worker SDK.
//
// Pure functions, thread-safe. Errors are InvalidArgument with a message that
// names the value and says what is accepted, ready to show to the user.
#ifndef CORRAL_COMMON_SIZE_H_
#define CORRAL_COMMON_SIZE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace corral::common {

// Parses a size in bytes, as Kubernetes writes memory quantities:
//   "1048576"  plain bytes
//   "1k" "1M" "1G" "1T" "1P" "1E"        powers of 1000
//   "1Ki" "1Mi" "1Gi" "1Ti" "1Pi" "1Ei"  powers of 1024
//   "1.5Gi" ".5G"                        decimals, rounded up to whole bytes
// Rejects an empty string, signs ("-1", "+1"), spaces, unknown suffixes ("12X",
// "512MB"; "512m" is milli in Kubernetes, so it is refused with a hint), the
// exponent forms ("1e9") and values above INT64_MAX bytes.
absl::StatusOr<int64_t> ParseSize(std::string_view text);

// Prints bytes for a log line: an exact binary multiple with its suffix
// ("512Mi", "1Gi"), else two decimals of the largest unit ("1.46Gi"), else
// plain bytes below 1 KiB ("512").
std::string FormatSize(int64_t bytes);

}  // namespace corral::common

#endif  // CORRAL_COMMON_SIZE_H_
