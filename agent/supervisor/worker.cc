#include "agent/supervisor/worker.h"

#include <string.h>

#include "absl/strings/str_cat.h"

namespace corral::agent {

const char* WorkerStateName(WorkerState state) {
  switch (state) {
    case WorkerState::kStarting:
      return "STARTING";
    case WorkerState::kReady:
      return "READY";
    case WorkerState::kStopping:
      return "STOPPING";
    case WorkerState::kBackoff:
      return "BACKOFF";
    case WorkerState::kFailed:
      return "FAILED";
  }
  return "UNKNOWN";
}

std::string ExitStatus::Describe() const {
  if (signal != 0) {
    // sigabbrev_np is glibc >= 2.32 and needs no syscall.
    const char* name = sigabbrev_np(signal);
    return name ? absl::StrCat("killed by SIG", name)
                : absl::StrCat("killed by signal ", signal);
  }
  return absl::StrCat("exit code ", code);
}

}  // namespace corral::agent
