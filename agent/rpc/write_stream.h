// Server-streaming calls whose messages come from the agent's loop.
//
// The loop (or any thread) Push()es messages into a StreamOutbox; gRPC
// writes them one at a time through a StreamReactor. The reactor belongs to
// gRPC and deletes itself in OnDone. Everything else (observers on the loop,
// closures not run yet) holds only a shared_ptr to the outbox, which forgets
// the reactor at OnDone: a message pushed after the client went away never
// reaches a dead reactor.
//
// Flow control: at most `max_queued` messages wait; a new one beyond that
// drops the oldest, so a slow client never grows the agent's memory. The
// count is reported in the next message's `dropped_before` field when the
// message has one. max_queued = 1 coalesces: only the newest waits (the
// health Watch stream).
#ifndef CORRAL_AGENT_RPC_WRITE_STREAM_H_
#define CORRAL_AGENT_RPC_WRITE_STREAM_H_

#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/status.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace corral::agent {

template <typename Msg>
class StreamOutbox {
 public:
  explicit StreamOutbox(size_t max_queued) : max_queued_(max_queued) {}
  StreamOutbox(const StreamOutbox&) = delete;
  StreamOutbox& operator=(const StreamOutbox&) = delete;

  // Queues `msg` to be written. Ignored once done().
  void Push(Msg msg) {
    absl::MutexLock lock(&mu_);
    if (finished_ || cancelled_ || closing_) return;
    if (queue_.size() >= max_queued_) {
      queue_.pop_front();
      ++dropped_;
    }
    queue_.push_back(std::move(msg));
    PumpLocked();
  }

  // Ends the stream with `status` once the queued messages are written.
  // The first call wins.
  void Close(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    if (finished_ || closing_) return;
    closing_ = std::move(status);
    PumpLocked();
  }

  // Sends the response headers now unless a message already carried them:
  // tells the client the stream is set up (e.g. a watch is in place).
  void SendHeaders() {
    absl::MutexLock lock(&mu_);
    if (headers_sent_ || finished_ || cancelled_ || reactor_ == nullptr) {
      return;
    }
    headers_sent_ = true;
    reactor_->StartSendInitialMetadata();
  }

  // True once closed or the client went away: nothing more will be sent.
  bool done() const {
    absl::MutexLock lock(&mu_);
    return finished_ || cancelled_ || closing_.has_value();
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
    queue_.clear();
    PumpLocked();
  }
  // OnDone: the reactor is about to be deleted.
  void Detach() {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
    finished_ = true;
  }

 private:
  // Starts the next write, or finishes when nothing is left to write. One
  // write at a time; Finish only when no write is in flight. (gRPC never
  // runs a reaction inline from StartWrite/Finish, so holding mu_ is safe;
  // grpc's own health service does the same.)
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || reactor_ == nullptr) return;
    if (cancelled_) {
      return FinishLocked(
          grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
    }
    if (!queue_.empty()) {
      in_flight_ = std::move(queue_.front());
      queue_.pop_front();
      if constexpr (requires(Msg & m) { m.set_dropped_before(uint64_t{1}); }) {
        in_flight_.set_dropped_before(dropped_);
        dropped_ = 0;
      }
      writing_ = true;
      headers_sent_ = true;  // the first message carries them
      reactor_->StartWrite(&in_flight_);
      return;
    }
    if (closing_) FinishLocked(*closing_);
  }

  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    finished_ = true;
    // After Finish, OnDone may run at any moment on another thread; it
    // waits for mu_ in Detach, and nothing here touches reactor_ again.
    reactor_->Finish(std::move(status));
  }

  const size_t max_queued_;
  mutable absl::Mutex mu_;
  grpc::ServerWriteReactor<Msg>* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::deque<Msg> queue_ ABSL_GUARDED_BY(mu_);
  // Must live until OnWriteDone; gRPC reads it outside the lock meanwhile.
  Msg in_flight_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool headers_sent_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> closing_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

// The gRPC side of a StreamOutbox (or of any outbox with the same reactor
// methods, e.g. FollowStream). Create with `new`; gRPC owns it and it
// deletes itself when the call is over.
template <typename Msg, typename Outbox = StreamOutbox<Msg>>
class StreamReactor final : public grpc::ServerWriteReactor<Msg> {
 public:
  // `on_done` runs once, on a gRPC thread, when the call is over (finished
  // and every operation completed); use it to drop observers.
  StreamReactor(std::shared_ptr<Outbox> outbox, std::function<void()> on_done)
      : outbox_(std::move(outbox)), on_done_(std::move(on_done)) {
    outbox_->Attach(this);
  }
  StreamReactor(const StreamReactor&) = delete;
  StreamReactor& operator=(const StreamReactor&) = delete;

  // grpc::ServerWriteReactor
  void OnWriteDone(bool ok) override { outbox_->OnWriteDone(ok); }
  void OnCancel() override { outbox_->OnCancel(); }
  void OnDone() override {
    outbox_->Detach();
    if (on_done_) on_done_();
    delete this;
  }

 private:
  const std::shared_ptr<Outbox> outbox_;
  const std::function<void()> on_done_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_WRITE_STREAM_H_
