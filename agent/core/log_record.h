// One line of worker output as `corralctl logs` sees it.
#ifndef CORRAL_AGENT_CORE_LOG_RECORD_H_
#define CORRAL_AGENT_CORE_LOG_RECORD_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

namespace corral::agent {

// One line of worker output kept for `logs` (tail and follow).
struct LogRecord {
  uint64_t seq = 0;  // increasing, for follow
  std::string ts;    // RFC 3339
  int slot = 0;
  int generation = 0;
  pid_t pid = 0;
  std::string stream;  // "stdout" / "stderr"
  std::string text;
  bool cont = false;
};

// Records are shared, immutable, between the loop and the streams.
using LogRecordPtr = std::shared_ptr<const LogRecord>;

}  // namespace corral::agent

#endif  // CORRAL_AGENT_CORE_LOG_RECORD_H_
