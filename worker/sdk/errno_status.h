// Turns errno values into absl::Status: the one place the SDK does so.
#ifndef CORRAL_WORKER_SDK_ERRNO_STATUS_H_
#define CORRAL_WORKER_SDK_ERRNO_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace corral::worker {

// A Status for a failed syscall: "<what>: <strerror(err)>", with a code
// that matches the errno (ENOENT -> NotFound, EACCES -> PermissionDenied...).
absl::Status ErrnoStatus(int err, absl::string_view what);

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_ERRNO_STATUS_H_
