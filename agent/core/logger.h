// Formats agent events and worker output lines as text or JSON and hands
// them to the LogWriter. Loop thread only.
#ifndef CORRAL_AGENT_CORE_LOGGER_H_
#define CORRAL_AGENT_CORE_LOGGER_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/os/log_writer.h"
#include "agent/supervisor/event.h"

namespace corral::agent {

enum class LogFormat { kText, kJson };

// Where a worker line came from.
struct LineSource {
  int slot = 0;
  int generation = 0;
  pid_t pid = 0;
  const char* stream = "stdout";  // or "stderr"
};

class Logger : public EventSink {
 public:
  Logger(LogFormat format, LogWriter* writer);

  void Emit(const Event& event) override;
  // One line of worker output (without its newline). `cont` marks a piece
  // of a longer line that continues in the next call.
  void WorkerLine(const LineSource& source, std::string_view text, bool cont);
  // Reports lines the writer had to drop since the last report.
  void ReportDropped();
  uint64_t dropped_total() const { return dropped_total_; }
  // Lines dropped so far by source (a worker slot, or
  // FairLogQueue::kAgentSource for the agent's own).
  const std::map<int, uint64_t>& dropped_by_source() const {
    return dropped_by_source_;
  }
  // Events that did not match the event registry (a bug in the agent).
  uint64_t invalid_events() const { return invalid_events_; }
  // Also sends every event to `observer` (e.g. event streams).
  void AddObserver(std::function<void(const Event&)> observer);

 private:
  void Write(int source, std::string line);
  // Logs one `event_invalid` per event name that fails CheckEvent().
  void CheckAgainstRegistry(const Event& event);

  const LogFormat format_;
  LogWriter* const writer_;
  uint64_t dropped_total_ = 0;
  std::map<int, uint64_t> dropped_by_source_;
  uint64_t invalid_events_ = 0;
  std::set<std::string> reported_invalid_;  // event names
  std::vector<std::function<void(const Event&)>> observers_;
};

// JSON string escaping (RFC 8259), for our one-line output.
void AppendJsonString(std::string* out, std::string_view s);
// RFC 3339 UTC with microseconds, now.
std::string TimestampNow();

}  // namespace corral::agent

#endif  // CORRAL_AGENT_CORE_LOGGER_H_
