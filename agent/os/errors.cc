#include "agent/os/errors.h"

#include <string.h>

#include "absl/strings/str_cat.h"

namespace corral::agent {

absl::Status ErrnoStatus(int err, std::string_view what) {
  const char* text = strerrordesc_np(err);
  return absl::ErrnoToStatus(
      err, absl::StrCat(absl::string_view(what.data(), what.size()), ": ", text ? text : "unknown error"));
}

}  // namespace corral::agent
