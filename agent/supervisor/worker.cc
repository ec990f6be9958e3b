#include "agent/supervisor/worker.h"

#include "absl/strings/str_cat.h"
#include "common/signals.h"

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
    case WorkerState::kStopped:
      return "STOPPED";
  }
  return "UNKNOWN";
}

std::string ExitStatus::Describe() const {
  if (signal != 0) {
    return absl::StrCat("killed by ", common::SignalName(signal));
  }
  return absl::StrCat("exit code ", code);
}

}  // namespace corral::agent
