// Where the SDK's own messages go. Library code never prints: a message such
// as "drain did not finish within 15s" or "cannot send WATCHDOG=1" goes to
// the process-wide sink, which the service may replace to put SDK messages
// into its own log format.
//
// The default sink writes one line to stderr under the program's own name
// (program_invocation_short_name): "my-service: drain did not finish...".
//
//   corral::worker::SetLogSink([](LogSeverity s, absl::string_view msg) {
//     my_logger.Log(s == LogSeverity::kError ? "error" : "info", msg);
//   });
//
// Thread-safe: SetLogSink and Log may be called from any thread; the sink is
// called on the thread that logs (the worker's loop thread for everything
// the SDK says) and must not call SetLogSink itself.
#ifndef CORRAL_WORKER_SDK_LOG_H_
#define CORRAL_WORKER_SDK_LOG_H_

#include <functional>
#include <string>

#include "absl/strings/string_view.h"

namespace corral::worker {

enum class LogSeverity { kInfo, kWarning, kError };

// Receives one message: a single line, without a trailing newline.
using LogSink = std::function<void(LogSeverity, absl::string_view message)>;

// Replaces the sink; an empty function restores the default.
void SetLogSink(LogSink sink);

// Sends `message` to the current sink.
void Log(LogSeverity severity, absl::string_view message);

// What the default sink writes: "<program_invocation_short_name>: <message>\n".
std::string DefaultLogLine(absl::string_view message);

// "info", "warning", "error".
const char* LogSeverityName(LogSeverity severity);

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_LOG_H_
