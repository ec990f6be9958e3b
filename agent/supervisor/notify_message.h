// Parsing of sd_notify(3) datagrams ("KEY=VALUE" lines) sent by workers.
#ifndef CORRAL_AGENT_SUPERVISOR_NOTIFY_MESSAGE_H_
#define CORRAL_AGENT_SUPERVISOR_NOTIFY_MESSAGE_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "agent/supervisor/clock.h"

namespace corral::agent {

// The largest datagram accepted; systemd uses a similar bound.
inline constexpr size_t kMaxNotifyMessage = 4096;

// The longest EXTEND_TIMEOUT_USEC accepted. A start or stop that needs more
// than a day is a hung worker; a larger value is refused rather than
// wrapped (usec -> ns overflows int64 near 292 years).
inline constexpr Duration kMaxExtendTimeout = std::chrono::hours(24);

struct NotifyMessage {
  bool ready = false;                      // READY=1
  bool stopping = false;                   // STOPPING=1
  bool watchdog = false;                   // WATCHDOG=1
  std::optional<std::string> status;       // STATUS=...
  std::optional<Duration> extend_timeout;  // EXTEND_TIMEOUT_USEC=...
};

// Parses one datagram. Unknown keys are ignored (as systemd does); a line
// without '=', a bad number, an embedded NUL or an oversized payload is an
// error (the caller drops and counts the message).
absl::StatusOr<NotifyMessage> ParseNotifyMessage(std::string_view payload);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_NOTIFY_MESSAGE_H_
