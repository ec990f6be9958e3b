// Fuzzes the memory size parsers: common::ParseSize (Kubernetes quantities;
// --max-worker-memory and SDK settings) and the agent's
// --max-worker-memory / --cpu-rounding flags.
// Invariants: a size is >= 0; FormatSize of it, when exact (no decimals),
// parses back to the same bytes; a rounded FormatSize parses to within the
// rounding of the original; a fixed --max-worker-memory is > 0 and equals
// ParseSize; errors name the flag.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "agent/supervisor/size_parse.h"
#include "common/size.h"
#include "tests/fuzz/fuzz_check.h"

namespace corral::agent {
namespace {

void CheckFormat(int64_t bytes) {
  const std::string text = common::FormatSize(bytes);
  absl::StatusOr<int64_t> back = common::ParseSize(text);
  if (bytes < 0) return;  // printed as plain digits with a sign: not a size
  // Two decimals round the last 0.5% below INT64_MAX up to "8.00Ei", one
  // past the largest size: a log line's rounding, not a size to parse.
  constexpr int64_t kRoundsToTop = INT64_MAX - (int64_t{1} << 60) / 100;
  if (!back.ok() && bytes >= kRoundsToTop && text == "8.00Ei") return;
  FUZZ_CHECK(back.ok(), "FormatSize(", bytes, ") = '", text,
             "' does not parse: ", back.status().ToString());
  if (!absl::StrContains(text, '.')) {
    FUZZ_CHECK(*back == bytes, "FormatSize(", bytes, ") = '", text,
               "' parses to ", *back);
  } else {
    // Two decimals of the unit: within 0.5% of the value.
    const double err = std::fabs(static_cast<double>(*back - bytes));
    FUZZ_CHECK(err <= static_cast<double>(bytes) * 0.005 + 1, "FormatSize(",
               bytes, ") = '", text, "' parses to ", *back);
  }
}

void Check(std::string_view in) {
  absl::StatusOr<int64_t> size = common::ParseSize(in);
  if (size.ok()) {
    FUZZ_CHECK(*size >= 0, "negative size ", *size, " from ", fuzz::Shown(in));
    CheckFormat(*size);
  } else {
    FUZZ_CHECK(!size.status().message().empty(), "error without a message");
  }
  absl::StatusOr<WorkerMemoryBound> bound = ParseMaxWorkerMemory(in);
  if (bound.ok()) {
    if (bound->mode == WorkerMemoryBound::Mode::kFixed) {
      FUZZ_CHECK(bound->bytes > 0 && size.ok() && *size == bound->bytes,
                 "--max-worker-memory=", fuzz::Shown(in), " gave ",
                 bound->bytes);
    }
  } else {
    FUZZ_CHECK(
        absl::StrContains(bound.status().message(), "--max-worker-memory"),
        "error does not name the flag: ", bound.status().message());
  }
  absl::StatusOr<CpuRounding> rounding = ParseCpuRounding(in);
  FUZZ_CHECK(rounding.ok() == (in == "ceil" || in == "floor"),
             "--cpu-rounding=", fuzz::Shown(in));
  // The raw bytes as a number too: FormatSize must print every int64.
  if (in.size() >= sizeof(int64_t)) {
    int64_t v = 0;
    std::memcpy(&v, in.data(), sizeof(v));
    CheckFormat(v);
  }
}

}  // namespace
}  // namespace corral::agent

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  corral::agent::Check(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
