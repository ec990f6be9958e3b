// The event registry: every event the agent emits, declared once with its
// level(s), its fields (name and type) and what it means. It is the source of
// the event table in docs/agent-contract.md (tools/event_doc prints it; a
// unit test fails when the doc differs), and the Logger checks every event it
// writes against it, so the code, the contract and the docs cannot drift.
// Pure data and string checks: no syscalls; safe from any thread.
#ifndef CORRAL_AGENT_SUPERVISOR_EVENT_REGISTRY_H_
#define CORRAL_AGENT_SUPERVISOR_EVENT_REGISTRY_H_

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "agent/supervisor/event.h"

namespace corral::agent {

// The alternatives of FieldValue, by name.
enum class FieldType { kInt, kDouble, kBool, kString };

struct FieldSpec {
  std::string_view name;  // empty marks an unused entry of EventSpec::fields
  FieldType type = FieldType::kString;
  // False: the field is on every instance of the event. True: only on some;
  // `note` says when.
  bool optional = false;
  std::string_view note;  // short, for the docs; may be empty
};

// The levels an event may be logged at, as a bit set of Level values.
using LevelSet = uint8_t;
constexpr LevelSet LevelBit(Level level) {
  return static_cast<LevelSet>(1u << static_cast<int>(level));
}
inline constexpr LevelSet kInfo = LevelBit(Level::kInfo);
inline constexpr LevelSet kWarn = LevelBit(Level::kWarn);
inline constexpr LevelSet kError = LevelBit(Level::kError);

inline constexpr size_t kMaxEventFields = 6;

struct EventSpec {
  std::string_view name;
  LevelSet levels = kInfo;
  std::string_view meaning;  // one or two sentences, markdown
  // The declared fields, in the order the agent writes them; unused entries
  // have an empty name (aggregate initialisation leaves them so).
  std::array<FieldSpec, kMaxEventFields> fields{};

  // The declared fields without the unused tail.
  std::span<const FieldSpec> Fields() const;
  const FieldSpec* FindField(std::string_view field) const;
};

// Every event, in the order of the docs table.
std::span<const EventSpec> EventRegistry();
// The entry for `name`, or nullptr.
const EventSpec* FindEventSpec(std::string_view name);

// Checks `event` against its registry entry: a registered name, an allowed
// level, a non-empty message, every field declared (once, with its type),
// every non-optional field present. InvalidArgument names the event and the
// first problem.
absl::Status CheckEvent(const Event& event);

std::string_view FieldTypeName(FieldType type);
std::string_view EventLevelName(Level level);  // "info", "warn", "error"

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_EVENT_REGISTRY_H_
