#include "worker/sdk/errno_status.h"

namespace corral::worker {

absl::Status ErrnoStatus(int err, absl::string_view what) {
  // absl appends ": <strerror>" itself.
  return absl::ErrnoToStatus(err, what);
}

}  // namespace corral::worker
