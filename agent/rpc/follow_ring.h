// A MessageRing shared between the agent's loop (which appends) and the
// following streams (which read from gRPC's threads and the pump thread),
// and the StreamPump that wakes streams waiting for the next message.
//
// The loop's cost per message is one append and, when some streams were
// waiting, one hand-over to the pump thread: it does not grow with the
// number of streams. Converting, serializing and writing a message happen
// on the pump thread or on gRPC's threads, per stream. Thread-safe.
#ifndef CORRAL_AGENT_RPC_FOLLOW_RING_H_
#define CORRAL_AGENT_RPC_FOLLOW_RING_H_

#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/rpc/message_ring.h"

namespace corral::agent {

// A stream that can be told "there may be something new to write".
class Pumpable {
 public:
  virtual ~Pumpable() = default;
  virtual void Pump() = 0;
};

// One thread that runs Pump() on the streams a FollowRing woke.
class StreamPump {
 public:
  StreamPump();
  StreamPump(const StreamPump&) = delete;
  StreamPump& operator=(const StreamPump&) = delete;
  ~StreamPump();  // Stop()

  // Pumps `streams` (those still alive) soon, on the pump thread. Any thread.
  void Wake(std::vector<std::weak_ptr<Pumpable>> streams);
  // Ends the thread; later Wake() calls are ignored.
  void Stop();

 private:
  void Run();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || !queue_.empty();
  }

  absl::Mutex mu_;
  std::vector<std::vector<std::weak_ptr<Pumpable>>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

template <typename T>
class FollowRing {
 public:
  using Entry = typename MessageRing<T>::Entry;

  // `pump` must outlive this.
  FollowRing(size_t max_bytes, StreamPump* pump)
      : pump_(pump), ring_(max_bytes) {}
  FollowRing(const FollowRing&) = delete;
  FollowRing& operator=(const FollowRing&) = delete;

  // Adds a message and wakes the streams that were waiting for one.
  void Append(std::shared_ptr<const T> item, size_t bytes) {
    std::vector<std::weak_ptr<Pumpable>> wake;
    {
      absl::MutexLock lock(&mu_);
      ring_.Append(std::move(item), bytes);
      wake.swap(waiters_);
    }
    if (!wake.empty()) pump_->Wake(std::move(wake));
  }

  // The message at `cursor` (see MessageRing::Read). When there is none
  // yet, `waiter` is pumped once after the next Append: checking and
  // waiting under one lock, so no message slips between them.
  std::optional<Entry> ReadOrWait(uint64_t cursor,
                                  std::weak_ptr<Pumpable> waiter) {
    absl::MutexLock lock(&mu_);
    std::optional<Entry> e = ring_.Read(cursor);
    if (!e) waiters_.push_back(std::move(waiter));
    return e;
  }

  uint64_t TailCursor(size_t n, const std::function<bool(const T&)>& match) {
    absl::MutexLock lock(&mu_);
    return ring_.TailCursor(n, match);
  }
  uint64_t end_seq() {
    absl::MutexLock lock(&mu_);
    return ring_.end_seq();
  }
  size_t bytes() {
    absl::MutexLock lock(&mu_);
    return ring_.bytes();
  }

 private:
  StreamPump* const pump_;
  absl::Mutex mu_;
  MessageRing<T> ring_ ABSL_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<Pumpable>> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_FOLLOW_RING_H_
