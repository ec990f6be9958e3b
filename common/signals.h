// Signal names: the one table the agent (events, logs, SignalWorker),
// corralctl (completion) and the worker SDK (log lines) print and parse.
//
// Built from the <signal.h> constants, so the numbers are right on every
// architecture; no glibc extension (sigabbrev_np) needed. Thread-safe.
#ifndef CORRAL_COMMON_SIGNALS_H_
#define CORRAL_COMMON_SIGNALS_H_

#include <string>
#include <string_view>
#include <vector>

namespace corral::common {

// "SIGTERM" for SIGTERM, "SIGRTMIN+2" for a real-time signal, "signal 99"
// for a number without a name. The pointer stays valid for the life of the
// process (no buffer is shared between calls or threads).
const char* SignalName(int sig);

// Parses a name with or without "SIG", in any case ("TERM", "SIGTERM",
// "sigterm"), or a number from 1 to NSIG-1 ("15"); -1 when unknown.
int ParseSignal(std::string_view text);

// The short names of the standard signals ("HUP", "INT", ...), in the
// order kill -l prints them: what a user may type, e.g. for completion.
std::vector<std::string> SignalShortNames();

}  // namespace corral::common

#endif  // CORRAL_COMMON_SIGNALS_H_
