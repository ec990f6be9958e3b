// errno to absl::Status, in one place.
#ifndef CORRAL_AGENT_OS_ERRORS_H_
#define CORRAL_AGENT_OS_ERRORS_H_

#include <string_view>

#include "absl/status/status.h"

namespace corral::agent {

// Returns a Status for `err` whose message is "<what>: <strerror>".
absl::Status ErrnoStatus(int err, std::string_view what);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_ERRORS_H_
