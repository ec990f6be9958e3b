// Fuzzes the duration parsers: common::ParseDuration (the SDK's settings,
// CORRAL_DRAIN_IDLE_WINDOW) and the agent's ParseDurationFlag
// (--stop-timeout, --drain-delay, --ready-timeout, --watchdog, ...).
// Invariants: a duration is finite and >= 0; DurationToString of it parses
// back to the same duration; a flag's value can be added to any
// steady_clock reading of the next hundred years without overflowing (the
// supervisor computes deadlines as now + value); errors name the flag.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "agent/options.h"
#include "common/duration.h"
#include "tests/fuzz/fuzz_check.h"

namespace corral::agent {
namespace {

void Check(std::string_view in) {
  absl::StatusOr<absl::Duration> d = common::ParseDuration(in);
  if (d.ok()) {
    FUZZ_CHECK(*d >= absl::ZeroDuration() && *d != absl::InfiniteDuration(),
               fuzz::Shown(in), " gave ", absl::FormatDuration(*d));
    const std::string text = common::DurationToString(*d);
    absl::StatusOr<absl::Duration> back = common::ParseDuration(text);
    FUZZ_CHECK(back.ok() && *back == *d, fuzz::Shown(in), " printed as '", text,
               "' does not parse back");
  }
  const std::string flag = "--stop-timeout";
  absl::StatusOr<Duration> v = ParseDurationFlag(flag, std::string(in));
  FUZZ_CHECK(!v.ok() || d.ok(),
             "flag accepted what the parser refused: ", fuzz::Shown(in));
  if (!v.ok()) {
    FUZZ_CHECK(absl::StrContains(v.status().message(), flag),
               "error does not name the flag: ", v.status().message());
    return;
  }
  FUZZ_CHECK(*v >= Duration::zero(), "negative flag value");
  // Deadlines are steady_clock now + value; a century of uptime must fit.
  constexpr auto kCentury = std::chrono::hours(24 * 365 * 100);
  FUZZ_CHECK(*v <= Duration::max() - kCentury,
             "--stop-timeout=", fuzz::Shown(in), " (", FormatDurationFlag(*v),
             ") overflows now + value");
  FUZZ_CHECK(ParseDurationFlag(flag, FormatDurationFlag(*v))
                     .value_or(Duration::min()) == *v,
             "flag value ", fuzz::Shown(in), " printed as '",
             FormatDurationFlag(*v), "' does not parse back");
}

}  // namespace
}  // namespace corral::agent

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  corral::agent::Check(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
