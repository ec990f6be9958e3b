#include "agent/os/log_writer.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace corral::agent {

LogWriter::LogWriter(int fd, size_t max_pending_bytes)
    : fd_(fd), queue_(max_pending_bytes), thread_([this] { Run(); }) {}

LogWriter::~LogWriter() {
  Flush(std::chrono::seconds(1));
  bool idle;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    idle = Idle();
  }
  // A writer stuck in write() on a full, unread pipe cannot be joined; the
  // process is exiting, so let it go.
  if (idle) {
    thread_.join();
  } else {
    thread_.detach();
  }
}

bool LogWriter::Write(int source, std::string line) {
  // The writer thread's Await sees the new line when the lock is released.
  absl::MutexLock lock(&mu_);
  return queue_.Push(source, std::move(line));
}

void LogWriter::Flush(Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(this, &LogWriter::Idle),
                       absl::FromChrono(timeout));
}

std::map<int, uint64_t> LogWriter::TakeDropped() {
  absl::MutexLock lock(&mu_);
  return queue_.TakeDropped();
}

void LogWriter::Run() {
  // Locked except while a batch is written (Unlock/Lock below).
  mu_.Lock();
  for (;;) {
    mu_.Await(absl::Condition(this, &LogWriter::HasWorkOrStop));
    if (queue_.empty()) break;  // stopping
    // Take a batch and write it without holding the lock.
    const std::string batch = queue_.PopBatch(64 * 1024);
    writing_ = true;
    mu_.Unlock();
    size_t off = 0;
    while (off < batch.size()) {
      ssize_t n = write(fd_, batch.data() + off, batch.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        // Someone made our stdout non-blocking: wait for room.
        pollfd p{fd_, POLLOUT, 0};
        poll(&p, 1, 1000);
        continue;
      }
      if (n <= 0) break;  // stdout is gone: drop the rest of the batch
      off += static_cast<size_t>(n);
    }
    mu_.Lock();
    writing_ = false;
  }
  mu_.Unlock();
}

}  // namespace corral::agent
