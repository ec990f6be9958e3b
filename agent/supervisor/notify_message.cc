#include "agent/supervisor/notify_message.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace corral::agent {
namespace {

// EXTEND_TIMEOUT_USEC's value: decimal microseconds up to kMaxExtendTimeout.
// Checked in microseconds, before any conversion, so nothing can overflow.
absl::StatusOr<Duration> ParseExtendTimeout(absl::string_view value) {
  const absl::string_view shown = value.substr(0, 32);
  const bool digits = !value.empty() &&
                      std::all_of(value.begin(), value.end(),
                                  [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    return absl::InvalidArgumentError(absl::StrCat(
        "EXTEND_TIMEOUT_USEC='", shown, "' is not a number of microseconds"));
  }
  constexpr uint64_t kMaxUsec =
      std::chrono::duration_cast<std::chrono::microseconds>(kMaxExtendTimeout)
          .count();
  uint64_t usec = 0;
  // SimpleAtoi fails only on overflow here: the value is all digits.
  if (!absl::SimpleAtoi(value, &usec) || usec > kMaxUsec) {
    return absl::OutOfRangeError(absl::StrCat(
        "EXTEND_TIMEOUT_USEC=", shown, value.size() > shown.size() ? "..." : "",
        " is over the limit of ", kMaxUsec, " us (",
        absl::FormatDuration(absl::FromChrono(kMaxExtendTimeout)), ")"));
  }
  return std::chrono::microseconds(usec);
}

}  // namespace

absl::StatusOr<NotifyMessage> ParseNotifyMessage(std::string_view payload_std) {
  // Debian's Abseil has its own string_view type.
  const absl::string_view payload(payload_std.data(), payload_std.size());
  if (payload.size() > kMaxNotifyMessage) {
    return absl::InvalidArgumentError(
        absl::StrCat("message of ", payload.size(), " bytes is over the ",
                     kMaxNotifyMessage, " byte limit"));
  }
  if (payload.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("message contains a NUL byte");
  }
  NotifyMessage msg;
  for (absl::string_view line : absl::StrSplit(payload, '\n')) {
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("line without KEY=VALUE: '", line.substr(0, 64), "'"));
    }
    absl::string_view key = line.substr(0, eq);
    absl::string_view value = line.substr(eq + 1);
    if (key == "READY") {
      msg.ready = value == "1";
    } else if (key == "STOPPING") {
      msg.stopping = value == "1";
    } else if (key == "WATCHDOG") {
      msg.watchdog = value == "1";
    } else if (key == "STATUS") {
      msg.status = std::string(value);
    } else if (key == "EXTEND_TIMEOUT_USEC") {
      absl::StatusOr<Duration> extend = ParseExtendTimeout(value);
      if (!extend.ok()) return extend.status();
      msg.extend_timeout = *extend;
    }
  }
  return msg;
}

}  // namespace corral::agent
