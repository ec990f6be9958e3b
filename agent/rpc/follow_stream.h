// A server stream that reads its messages from a FollowRing (WatchEvents,
// StreamLogs): the outbox a StreamReactor writes from.
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
// mutex, then the ring's.
#ifndef CORRAL_AGENT_RPC_FOLLOW_STREAM_H_
#define CORRAL_AGENT_RPC_FOLLOW_STREAM_H_

#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/status.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/rpc/follow_ring.h"

namespace corral::agent {

template <typename T, typename Msg>
class FollowStream final
    : public Pumpable,
      public std::enable_shared_from_this<FollowStream<T, Msg>> {
 public:
  using Match = std::function<bool(const T&)>;
  using Convert = std::function<void(const T&, Msg*)>;

  // `ring` must outlive this. `match` picks the messages this stream
  // wants; `convert` fills the message to write.
  FollowStream(FollowRing<T>* ring, Match match, Convert convert)
      : ring_(ring), match_(std::move(match)), convert_(std::move(convert)) {}
  FollowStream(const FollowStream&) = delete;
  FollowStream& operator=(const FollowStream&) = delete;

  // Starts writing the ring's messages from `from`. With `until`, the
  // stream ends (OK) before that sequence number; without, it follows.
  void Start(uint64_t from, std::optional<uint64_t> until) {
    {
      absl::MutexLock lock(&mu_);
      if (started_) return;
      started_ = true;
      cursor_ = from;
      until_ = until;
    }
    Pump();
  }

  // Ends the stream with `status` once it has written what the ring holds
  // for it (at once when not started). The first call wins.
  void Close(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || closing_) return;
      closing_ = std::move(status);
    }
    Pump();
  }

  // Sends the response headers now unless a message already carried them.
  void SendHeaders() {
    absl::MutexLock lock(&mu_);
    if (headers_sent_ || finished_ || cancelled_ || reactor_ == nullptr) {
      return;
    }
    headers_sent_ = true;
    reactor_->StartSendInitialMetadata();
  }

  // True once closed or the client went away.
  bool done() const {
    absl::MutexLock lock(&mu_);
    return finished_ || cancelled_ || closing_.has_value();
  }

  // Pumpable: writes the next message when none is being written.
  void Pump() override {
    absl::MutexLock lock(&mu_);
    PumpLocked();
  }

  // --- for StreamReactor (gRPC threads) ----------------------------------
  void Attach(grpc::ServerWriteReactor<Msg>* reactor) {
    absl::MutexLock lock(&mu_);
    reactor_ = reactor;
  }
  void OnWriteDone(bool ok) {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) cancelled_ = true;  // the stream is broken: no more writes
    PumpLocked();
  }
  void OnCancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    PumpLocked();
  }
  void Detach() {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
    finished_ = true;
  }

 private:
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || reactor_ == nullptr) return;
    if (cancelled_) {
      return FinishLocked(
          grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
    }
    if (started_ && NextLocked()) return;
    if (closing_) return FinishLocked(*closing_);
    if (started_ && until_ && cursor_ >= *until_) {
      FinishLocked(grpc::Status::OK);
    }
  }

  // Starts writing the next matching message; false when there is none
  // (the stream then waits for the ring, unless it ends at `until_`).
  bool NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (;;) {
      if (until_ && cursor_ >= *until_) return false;
      std::weak_ptr<Pumpable> self;
      if (!until_ && !closing_) self = this->weak_from_this();
      std::optional<typename FollowRing<T>::Entry> e =
          ring_->ReadOrWait(cursor_, std::move(self));
      if (!e) return false;
      skipped_ += e->skipped;
      cursor_ = e->seq + 1;
      if (!match_(*e->item)) continue;
      in_flight_.Clear();
      convert_(*e->item, &in_flight_);
      in_flight_.set_dropped_before(skipped_);
      skipped_ = 0;
      writing_ = true;
      headers_sent_ = true;  // the first message carries them
      reactor_->StartWrite(&in_flight_);
      return true;
    }
  }

  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    finished_ = true;
    // After Finish, OnDone may run at any moment on another thread; it
    // waits for mu_ in Detach, and nothing here touches reactor_ again.
    reactor_->Finish(std::move(status));
  }

  // Constant after construction.
  FollowRing<T>* const ring_;
  const Match match_;
  const Convert convert_;

  mutable absl::Mutex mu_;
  grpc::ServerWriteReactor<Msg>* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<uint64_t> until_ ABSL_GUARDED_BY(mu_);
  // Ring messages passed over (evicted before this stream read them) since
  // the last message written.
  uint64_t skipped_ ABSL_GUARDED_BY(mu_) = 0;
  // Must live until OnWriteDone; gRPC reads it outside the lock meanwhile.
  Msg in_flight_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool headers_sent_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> closing_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_FOLLOW_STREAM_H_
