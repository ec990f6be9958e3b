// Writes finished log lines to an fd (the agent's stdout) from its own
// thread, so a slow or blocked stdout never stalls the event loop. The queue
// is bounded in bytes and shared fairly between sources (FairLogQueue): when
// it is full, the loudest source loses lines first. Drops are counted per
// source.
#ifndef CORRAL_AGENT_OS_LOG_WRITER_H_
#define CORRAL_AGENT_OS_LOG_WRITER_H_

#include <cstdint>
#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/supervisor/clock.h"
#include "agent/supervisor/fair_log_queue.h"

namespace corral::agent {

class LogWriter {
 public:
  // `fd` is not owned. `max_pending_bytes` bounds the queue.
  LogWriter(int fd, size_t max_pending_bytes);
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;
  // Flushes for at most a second, then stops the thread.
  ~LogWriter();

  // Queues `line` (which must end in '\n') from `source` (a worker slot,
  // or FairLogQueue::kAgentSource). Returns false, and counts the line as
  // dropped, when it did not get in. Any thread.
  bool Write(int source, std::string line);
  bool Write(std::string line) {
    return Write(FairLogQueue::kAgentSource, std::move(line));
  }
  // Waits up to `timeout` until everything queued is written.
  void Flush(Duration timeout);
  // Lines dropped per source since the last call; resets the counts.
  std::map<int, uint64_t> TakeDropped();

 private:
  void Run();
  // Conditions for absl::Mutex::Await.
  bool HasWorkOrStop() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || !queue_.empty();
  }
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.empty() && !writing_;
  }

  const int fd_;
  absl::Mutex mu_;
  FairLogQueue queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;  // a batch is being written
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_LOG_WRITER_H_
