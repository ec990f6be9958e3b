// Parsing of the sizing flags: --max-worker-memory and --cpu-rounding (memory
// sizes in Kubernetes quantity syntax come from common/size.h).
//
// Pure functions, thread-safe. Errors are InvalidArgument with a message that
// names the value and says what is accepted, ready to show to the user.

#ifndef CORRAL_AGENT_SUPERVISOR_SIZE_PARSE_H_
#define CORRAL_AGENT_SUPERVISOR_SIZE_PARSE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "agent/supervisor/sizing.h"
#include "common/size.h"

namespace corral::agent {

// The size parser and printer are shared with the worker SDK (common/size.h).
using common::FormatSize;
using common::ParseSize;

// Parses --max-worker-memory: "auto", "off", or a size > 0 (ParseSize).
// Errors name the flag.
absl::StatusOr<WorkerMemoryBound> ParseMaxWorkerMemory(std::string_view text);

// Parses --cpu-rounding: "ceil" or "floor". Errors name the flag.
absl::StatusOr<CpuRounding> ParseCpuRounding(std::string_view text);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_SIZE_PARSE_H_
