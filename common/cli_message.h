// CLI11's parse errors in words a user reads once: CLI11 speaks about its
// own model ("--drain-delay: At Most 1 required but received 2", "A
// subcommand is required"), the agent and corralctl speak about flags.
#ifndef CORRAL_COMMON_CLI_MESSAGE_H_
#define CORRAL_COMMON_CLI_MESSAGE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace corral {

// Rewrites one CLI11 ParseError message (e.what()); a message it does not
// know comes back unchanged.
std::string ReadableCliError(absl::string_view message);

// The value a CLI11 message says was refused for a flag ("Could not
// convert: --workers = node" -> "node"), or "" when it names none. Lets a
// caller add a hint about that value (a command given without `--`).
std::string RefusedCliValue(absl::string_view message);

}  // namespace corral

#endif  // CORRAL_COMMON_CLI_MESSAGE_H_
