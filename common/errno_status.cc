#include "common/errno_status.h"

#include "absl/strings/string_view.h"

namespace corral::common {

absl::Status ErrnoStatus(int err, std::string_view what) {
  // ErrnoToStatus appends ": <strerror>" itself. Debian's Abseil has its own
  // string_view type.
  return absl::ErrnoToStatus(err, absl::string_view(what.data(), what.size()));
}

}  // namespace corral::common
