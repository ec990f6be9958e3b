#include "agent/os/errors.h"

namespace corral::agent {

absl::Status ErrnoStatus(int err, std::string_view what) {
  // ErrnoToStatus appends ": <strerror>" itself.
  return absl::ErrnoToStatus(err, absl::string_view(what.data(), what.size()));
}

}  // namespace corral::agent
