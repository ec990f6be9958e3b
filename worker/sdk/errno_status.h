// Turns errno values into absl::Status: the SDK uses the one function shared
// with the agent (common/errno_status.h). Kept so that services including
// this header keep compiling.
#ifndef CORRAL_WORKER_SDK_ERRNO_STATUS_H_
#define CORRAL_WORKER_SDK_ERRNO_STATUS_H_

#include "common/errno_status.h"

namespace corral::worker {

// A Status for a failed syscall: "<what>: <strerror(err)>", with a code
// that matches the errno (ENOENT -> NotFound, EACCES -> PermissionDenied...).
using common::ErrnoStatus;

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_ERRNO_STATUS_H_
