// A server stream that reads its messages from a FollowRing (WatchEvents,
// StreamLogs): an outbox a StreamReactor (stream_reactor.h) writes from.
//
// It holds a cursor into the shared ring and one message being written,
// never a queue of its own, so a client that does not read costs the agent
// one message. When the client reads slower than the ring turns over, the
// messages it missed are skipped and the next one says how many
// (`dropped_before`): a gap, not a disconnect. A matching filter (a worker,
// event names) is applied as the stream reads, off the loop.
//
// Threads: Start, Close and SendHeaders from any thread; Pump from the pump
// thread and gRPC's; the rest from StreamReactor. Lock order: this stream's
// mutex (ReactorOutbox::mu_), then the ring's.
#ifndef CORRAL_AGENT_RPC_FOLLOW_STREAM_H_
#define CORRAL_AGENT_RPC_FOLLOW_STREAM_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "agent/rpc/follow_ring.h"
#include "agent/rpc/stream_reactor.h"

namespace corral::agent {

template <typename T, typename Msg>
class FollowStream final
    : public ReactorOutbox<Msg>,
      public Pumpable,
      public std::enable_shared_from_this<FollowStream<T, Msg>> {
 public:
  using Match = std::function<bool(const T&)>;
  using Convert = std::function<void(const T&, Msg*)>;

  // `ring` must outlive this. `match` picks the messages this stream
  // wants; `convert` fills the message to write.
  FollowStream(FollowRing<T>* ring, Match match, Convert convert)
      : ring_(ring), match_(std::move(match)), convert_(std::move(convert)) {}

  // Starts writing the ring's messages from `from`. With `until`, the
  // stream ends (OK) before that sequence number; without, it follows.
  void Start(uint64_t from, std::optional<uint64_t> until) {
    absl::MutexLock lock(&mu_);
    if (started_) return;
    started_ = true;
    cursor_ = from;
    until_ = until;
    this->PumpLocked();
  }

  // Close (from ReactorOutbox) ends the stream once it has written what the
  // ring holds for it (at once when not started).

  // Pumpable: writes the next message when none is being written.
  void Pump() override {
    absl::MutexLock lock(&mu_);
    this->PumpLocked();
  }

 private:
  using ReactorOutbox<Msg>::mu_;

  // ReactorOutbox: the next matching message; false when there is none
  // (the stream then waits for the ring, unless it ends at `until_`).
  bool NextLocked(Msg* msg) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!started_) return false;
    for (;;) {
      if (until_ && cursor_ >= *until_) return false;
      std::weak_ptr<Pumpable> self;
      if (!until_ && !this->ClosingLocked()) self = this->weak_from_this();
      std::optional<typename FollowRing<T>::Entry> e =
          ring_->ReadOrWait(cursor_, std::move(self));
      if (!e) return false;
      skipped_ += e->skipped;
      cursor_ = e->seq + 1;
      if (!match_(*e->item)) continue;
      msg->Clear();
      convert_(*e->item, msg);
      msg->set_dropped_before(skipped_);
      skipped_ = 0;
      return true;
    }
  }
  bool EndedLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return started_ && until_ && cursor_ >= *until_;
  }

  // Constant after construction.
  FollowRing<T>* const ring_;
  const Match match_;
  const Convert convert_;

  bool started_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<uint64_t> until_ ABSL_GUARDED_BY(mu_);
  // Ring messages passed over (evicted before this stream read them) since
  // the last message written.
  uint64_t skipped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_FOLLOW_STREAM_H_
