#include "agent/supervisor/ipc_message.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/json.h"

namespace corral::agent {
namespace {

using common::FindMember;
using common::JsonMember;
using common::JsonString;

absl::Status NotJson(std::string_view line) {
  return absl::InvalidArgumentError(absl::StrCat(
      "IPC line is not JSON: '", std::string(line.substr(0, 64)), "'"));
}

// {"corral":VERB,...}: the message for VERB; nullopt for a verb this agent
// does not know (a newer worker: ignored, like unknown sd_notify keys).
absl::StatusOr<std::optional<NotifyMessage>> FromVerb(const std::string& verb,
                                                      const JsonMember* text) {
  NotifyMessage msg;
  if (verb == "ready") {
    msg.ready = true;
  } else if (verb == "watchdog") {
    msg.watchdog = true;
  } else if (verb == "stopping") {
    msg.stopping = true;
  } else if (verb == "status") {
    std::optional<std::string> status =
        text != nullptr ? JsonString(text->value) : std::nullopt;
    if (!status) {
      return absl::InvalidArgumentError(
          "IPC message {\"corral\":\"status\"} needs a string \"text\"");
    }
    if (status->size() > kMaxNotifyMessage) {
      return absl::InvalidArgumentError(absl::StrCat(
          "IPC status text of ", status->size(), " bytes is over the ",
          kMaxNotifyMessage, " byte limit"));
    }
    msg.status = *std::move(status);
  } else {
    return std::nullopt;
  }
  return msg;
}

}  // namespace

absl::StatusOr<std::optional<NotifyMessage>> ParseIpcMessage(
    std::string_view line) {
  const absl::string_view text(line.data(), line.size());
  if (!common::IsJsonValue(text)) return NotJson(line);
  if (std::optional<std::string> word = JsonString(text)) {
    // process.send('ready'), as PM2's wait_ready.
    if (*word != "ready") return std::nullopt;
    NotifyMessage msg;
    msg.ready = true;
    return msg;
  }
  absl::StatusOr<common::JsonMembers> members = common::ParseJsonObject(text);
  if (!members.ok()) return std::nullopt;  // a number, array ... of the app
  const JsonMember* corral = FindMember(*members, "corral");
  if (corral == nullptr) return std::nullopt;  // Node's own, or the app's
  std::optional<std::string> verb = JsonString(corral->value);
  if (!verb) {
    return absl::InvalidArgumentError(
        "IPC message: \"corral\" must be a string");
  }
  return FromVerb(*verb, FindMember(*members, "text"));
}

}  // namespace corral::agent
