// Server-streaming calls whose messages come from the agent's loop.
//
// The loop (or any thread) Push()es messages into a StreamOutbox; gRPC
// writes them one at a time through a StreamReactor (stream_reactor.h).
//
// Flow control: at most `max_queued` messages wait; a new one beyond that
// drops the oldest, so a slow client never grows the agent's memory. The
// count is reported in the next message's `dropped_before` field when the
// message has one. max_queued = 1 coalesces: only the newest waits (the
// health Watch stream).
#ifndef CORRAL_AGENT_RPC_WRITE_STREAM_H_
#define CORRAL_AGENT_RPC_WRITE_STREAM_H_

#include <cstdint>
#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "agent/rpc/stream_reactor.h"

namespace corral::agent {

// Thread-safe.
template <typename Msg>
class StreamOutbox final : public ReactorOutbox<Msg> {
 public:
  explicit StreamOutbox(size_t max_queued) : max_queued_(max_queued) {}

  // Queues `msg` to be written. Ignored once done().
  void Push(Msg msg) {
    absl::MutexLock lock(&mu_);
    if (this->DoneLocked()) return;
    if (queue_.size() >= max_queued_) {
      queue_.pop_front();
      ++dropped_;
    }
    queue_.push_back(std::move(msg));
    this->PumpLocked();
  }

 private:
  using ReactorOutbox<Msg>::mu_;

  // ReactorOutbox
  bool NextLocked(Msg* msg) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queue_.empty()) return false;
    *msg = std::move(queue_.front());
    queue_.pop_front();
    if constexpr (requires(Msg & m) { m.set_dropped_before(uint64_t{1}); }) {
      msg->set_dropped_before(dropped_);
      dropped_ = 0;
    }
    return true;
  }
  void CancelledLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    queue_.clear();
  }

  const size_t max_queued_;
  std::deque<Msg> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_WRITE_STREAM_H_
