#include "agent/supervisor/notify_message.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace corral::agent {

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
      uint64_t usec = 0;
      if (!absl::SimpleAtoi(value, &usec)) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad EXTEND_TIMEOUT_USEC '", value, "'"));
      }
      msg.extend_timeout = std::chrono::microseconds(usec);
    }
  }
  return msg;
}

}  // namespace corral::agent
