// Parsing of the lines a Node worker writes on its IPC channel
// (--ready=ipc: NODE_CHANNEL_FD, NODE_CHANNEL_SERIALIZATION_MODE=json), the
// IPC counterpart of sd_notify (see docs/agent-contract.md):
//
//   "ready"                                  process.send('ready'), as PM2
//   {"corral":"ready"}                       READY=1
//   {"corral":"watchdog"}                    WATCHDOG=1
//   {"corral":"stopping"}                    STOPPING=1
//   {"corral":"status","text":"..."}         STATUS=...
//
// Every other line is Node's own traffic ({"cmd":"NODE_..."}) or the app's
// (process.send of anything else) and is not for the agent. Pure function.
#ifndef CORRAL_AGENT_SUPERVISOR_IPC_MESSAGE_H_
#define CORRAL_AGENT_SUPERVISOR_IPC_MESSAGE_H_

#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "agent/supervisor/notify_message.h"

namespace corral::agent {

// Parses one line (without its '\n'; a trailing '\r' or blanks are fine).
// Returns nullopt for a line that is not for the agent, also for a
// {"corral":...} verb this agent does not know (newer workers on an older
// agent: ignored, as sd_notify ignores unknown keys). An error for a line
// that is not JSON, or a corral message that is malformed (a "status"
// without a string "text", a text over kMaxNotifyMessage bytes, a "corral"
// value that is not a string): the caller drops and reports it, as it does
// for a bad sd_notify datagram.
absl::StatusOr<std::optional<NotifyMessage>> ParseIpcMessage(
    std::string_view line);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_IPC_MESSAGE_H_
