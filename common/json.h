// The members of one JSON object, each value kept as the exact JSON text it
// was written as: enough to change a few top-level fields of a document
// another program (express-session) wrote, leaving every other byte of it
// as it was (numbers, nested objects, empty arrays, key order).
//
// Used by the worker SDK (connect-redis sessions) and the agent (Node IPC
// lines). Thread-safe (no state).
#ifndef CORRAL_COMMON_JSON_H_
#define CORRAL_COMMON_JSON_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace corral::common {

struct JsonMember {
  std::string name;   // decoded
  std::string value;  // raw JSON text of the value
};
using JsonMembers = std::vector<JsonMember>;

// The members of `text`, which must be one JSON object (RFC 8259, strict).
absl::StatusOr<JsonMembers> ParseJsonObject(absl::string_view text);

// The elements of `text`, which must be one JSON array, each as the exact
// JSON text it was written as.
absl::StatusOr<std::vector<std::string>> ParseJsonArray(absl::string_view text);

// `{"name":value,...}` in order.
std::string WriteJsonObject(const JsonMembers& members);

// True when `text` is exactly one JSON value (blanks around it allowed).
bool IsJsonValue(absl::string_view text);

// `s` as a JSON string literal.
std::string JsonQuote(absl::string_view s);

// The member called `name` (the last one, as JavaScript reads duplicates).
const JsonMember* FindMember(const JsonMembers& members,
                             absl::string_view name);

// Replaces the value of `name` (every duplicate), or appends the member.
void SetMember(JsonMembers& members, absl::string_view name, std::string value);

// Removes every member called `name`.
void RemoveMember(JsonMembers& members, absl::string_view name);

// The decoded text when `raw` is exactly one JSON string literal.
std::optional<std::string> JsonString(absl::string_view raw);

// A JSON number's value when `raw` is one that fits a double.
std::optional<double> JsonNumber(absl::string_view raw);

}  // namespace corral::common

#endif  // CORRAL_COMMON_JSON_H_
