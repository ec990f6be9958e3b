// Structured events: what the supervisor reports about itself and its workers.
// One value type feeds the logs (text or JSON) and, later, the event stream.
#ifndef CORRAL_AGENT_SUPERVISOR_EVENT_H_
#define CORRAL_AGENT_SUPERVISOR_EVENT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace corral::agent {

enum class Level { kInfo, kWarn, kError };

// A field value: int, double, bool or string.
using FieldValue = std::variant<int64_t, double, bool, std::string>;

struct Event {
  Level level = Level::kInfo;
  std::string name;  // e.g. "worker_ready"; see docs/agent-contract.md
  std::string msg;   // one human sentence
  std::vector<std::pair<std::string, FieldValue>> fields;

  Event& With(std::string key, FieldValue value) {
    fields.emplace_back(std::move(key), std::move(value));
    return *this;
  }
  // Returns the field's value or nullptr.
  const FieldValue* Find(std::string_view key) const {
    for (const auto& [k, v] : fields) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

// Receives events. Called on the supervisor's thread only.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void Emit(const Event& event) = 0;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_EVENT_H_
