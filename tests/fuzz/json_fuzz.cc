// Fuzzes common/json.h, the strict JSON reader behind connect-redis
// session documents (written by any Node app sharing the Redis) and Node
// IPC lines (written by the worker).
// Invariants: an object that parses is a JSON value; written back with
// WriteJsonObject it parses to the same members, and writing that again
// gives the same text; every member value is itself one JSON value; a
// string member decodes and JsonQuote of the decoded text decodes to it
// again; SetMember/RemoveMember keep the object valid; JsonQuote of any
// bytes is a JSON string that decodes to those bytes.
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/json.h"
#include "tests/fuzz/fuzz_check.h"

namespace corral::common {
namespace {

bool SameMembers(const JsonMembers& a, const JsonMembers& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].value != b[i].value) return false;
  }
  return true;
}

void CheckObject(absl::string_view in) {
  absl::StatusOr<JsonMembers> members = ParseJsonObject(in);
  if (!members.ok()) return;
  FUZZ_CHECK(IsJsonValue(in), "object is not a value: ", fuzz::Shown(in));
  for (const JsonMember& m : *members) {
    FUZZ_CHECK(IsJsonValue(m.value), "member value ", fuzz::Shown(m.value));
    if (std::optional<std::string> s = JsonString(m.value)) {
      FUZZ_CHECK(JsonString(JsonQuote(*s)) == s, "string ", fuzz::Shown(*s));
    }
    (void)JsonNumber(m.value);
  }
  const std::string text = WriteJsonObject(*members);
  absl::StatusOr<JsonMembers> again = ParseJsonObject(text);
  FUZZ_CHECK(again.ok() && SameMembers(*members, *again), "written as ",
             fuzz::Shown(text), " from ", fuzz::Shown(in));
  FUZZ_CHECK(WriteJsonObject(*again) == text,
             "not stable: ", fuzz::Shown(text));
  // Edits as the session store makes them keep the document valid.
  JsonMembers edited = *members;
  SetMember(edited, "counter", "7");
  RemoveMember(edited, "cookie");
  const JsonMember* counter = FindMember(edited, "counter");
  FUZZ_CHECK(counter != nullptr && counter->value == "7", "SetMember");
  FUZZ_CHECK(FindMember(edited, "cookie") == nullptr, "RemoveMember");
  FUZZ_CHECK(ParseJsonObject(WriteJsonObject(edited)).ok(), "edited object");
}

}  // namespace
}  // namespace corral::common

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);
  corral::common::CheckObject(in);
  // Any bytes quoted decode to the same bytes.
  const std::string quoted = corral::common::JsonQuote(in);
  FUZZ_CHECK(corral::common::JsonString(quoted) == std::string(in),
             "JsonQuote of ", corral::fuzz::Shown(in));
  FUZZ_CHECK(corral::common::IsJsonValue(quoted), "quoted is not a value");
  return 0;
}
