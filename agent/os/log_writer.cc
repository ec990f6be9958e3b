#include "agent/os/log_writer.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace corral::agent {

LogWriter::LogWriter(int fd, size_t max_pending_bytes)
    : fd_(fd),
      max_pending_bytes_(max_pending_bytes),
      thread_([this] { Run(); }) {}

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

bool LogWriter::Write(std::string line) {
  // The writer thread's Await sees the new line when the lock is released.
  absl::MutexLock lock(&mu_);
  if (pending_bytes_ + line.size() > max_pending_bytes_) {
    ++dropped_;
    return false;
  }
  pending_bytes_ += line.size();
  queue_.push_back(std::move(line));
  return true;
}

void LogWriter::Flush(Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(this, &LogWriter::Idle),
                       absl::FromChrono(timeout));
}

uint64_t LogWriter::TakeDropped() {
  absl::MutexLock lock(&mu_);
  uint64_t n = dropped_;
  dropped_ = 0;
  return n;
}

void LogWriter::Run() {
  // Locked except while a batch is written (Unlock/Lock below).
  mu_.Lock();
  for (;;) {
    mu_.Await(absl::Condition(this, &LogWriter::HasWorkOrStop));
    if (queue_.empty()) break;  // stopping
    // Take a batch and write it without holding the lock.
    std::string batch;
    while (!queue_.empty() && batch.size() < 64 * 1024) {
      batch += queue_.front();
      pending_bytes_ -= queue_.front().size();
      queue_.pop_front();
    }
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
