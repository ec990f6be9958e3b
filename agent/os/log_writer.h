// Writes finished log lines to an fd (the agent's stdout) from its own
// thread, so a slow or blocked stdout never stalls the event loop. The queue
// is bounded in bytes; lines that do not fit are dropped and counted.
#ifndef CORRAL_AGENT_OS_LOG_WRITER_H_
#define CORRAL_AGENT_OS_LOG_WRITER_H_

#include <cstdint>
#include <deque>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/supervisor/clock.h"

namespace corral::agent {

class LogWriter {
 public:
  // `fd` is not owned. `max_pending_bytes` bounds the queue.
  LogWriter(int fd, size_t max_pending_bytes);
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;
  // Flushes for at most a second, then stops the thread.
  ~LogWriter();

  // Queues `line` (which must end in '\n'). Returns false, and counts the
  // line as dropped, when the queue is full. Any thread.
  bool Write(std::string line);
  // Waits up to `timeout` until everything queued is written.
  void Flush(Duration timeout);
  // Lines dropped so far; TakeDropped() returns and resets the count.
  uint64_t TakeDropped();

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
  const size_t max_pending_bytes_;
  absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  size_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;  // a batch is being written
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_LOG_WRITER_H_
