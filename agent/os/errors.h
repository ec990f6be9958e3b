// errno to absl::Status: the agent uses the one function shared with the
// worker SDK (common/errno_status.h).
#ifndef CORRAL_AGENT_OS_ERRORS_H_
#define CORRAL_AGENT_OS_ERRORS_H_

#include "common/errno_status.h"

namespace corral::agent {

// Returns a Status for `err` whose message is "<what>: <strerror>".
using common::ErrnoStatus;

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_ERRORS_H_
