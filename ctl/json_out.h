// corralctl's -o json: protobuf's JSON mapping made readable for scripts.
// Enums read as their short lower-case names ("ready", not
// "WORKER_STATE_READY") and 64-bit integers as JSON numbers (protobuf
// prints them as strings); timestamps stay RFC 3339 strings and durations
// "1.5s", as protobuf writes them. Field names are the proto's.
#ifndef CORRAL_CTL_JSON_OUT_H_
#define CORRAL_CTL_JSON_OUT_H_

#include <google/protobuf/message.h>

#include <string>

namespace corral::ctl {

// One JSON document for `message`, ending in a newline; indented when
// `pretty`, else one line (for streams: one line per message).
std::string ToJson(const google::protobuf::Message& message, bool pretty);

// "WORKER_STATE_READY" of enum WorkerState -> "ready"; "SLOT_DONE" of
// ReloadProgress.Phase -> "slot_done".
std::string ShortEnumName(const std::string& enum_type_name,
                          const std::string& value_name);

}  // namespace corral::ctl

#endif  // CORRAL_CTL_JSON_OUT_H_
