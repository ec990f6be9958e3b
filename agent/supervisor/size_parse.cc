#include "agent/supervisor/size_parse.h"

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace corral::agent {

absl::StatusOr<WorkerMemoryBound> ParseMaxWorkerMemory(std::string_view text) {
  if (text == "auto") return WorkerMemoryBound{WorkerMemoryBound::Mode::kAuto};
  if (text == "off") return WorkerMemoryBound{WorkerMemoryBound::Mode::kOff};
  absl::StatusOr<int64_t> bytes = ParseSize(text);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-worker-memory: ", bytes.status().message(),
                     " (or auto, or off)"));
  }
  if (*bytes == 0) {
    return absl::InvalidArgumentError(
        "--max-worker-memory=0: the bound must be greater than 0; use off to "
        "disable it");
  }
  return WorkerMemoryBound{WorkerMemoryBound::Mode::kFixed, *bytes};
}

absl::StatusOr<CpuRounding> ParseCpuRounding(std::string_view text) {
  if (text == "ceil") return CpuRounding::kCeil;
  if (text == "floor") return CpuRounding::kFloor;
  return absl::InvalidArgumentError(absl::StrFormat(
      "--cpu-rounding=\"%s\": expected ceil (1.5 CPUs -> 2 workers) or floor "
      "(1.5 CPUs -> 1 worker)",
      text));
}

}  // namespace corral::agent
