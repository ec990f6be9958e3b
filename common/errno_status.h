// errno to absl::Status, in one place for the agent and the worker SDK.
#ifndef CORRAL_COMMON_ERRNO_STATUS_H_
#define CORRAL_COMMON_ERRNO_STATUS_H_

#include <string_view>

#include "absl/status/status.h"

namespace corral::common {

// A Status for a failed call: "<what>: <strerror(err)>", with a code that
// matches the errno (ENOENT -> NotFound, EACCES -> PermissionDenied, ...).
// Pure; thread-safe.
absl::Status ErrnoStatus(int err, std::string_view what);

}  // namespace corral::common

#endif  // CORRAL_COMMON_ERRNO_STATUS_H_
