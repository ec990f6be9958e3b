// The gRPC plumbing shared by the agent's server streams: an outbox that
// writes one message at a time through a StreamReactor, and the reactor.
//
// The reactor belongs to gRPC and deletes itself in OnDone. Everything else
// (observers on the loop, the pump thread, closures not run yet) holds only
// a shared_ptr to the outbox, which forgets the reactor at OnDone: a message
// offered after the client went away never reaches a dead reactor.
//
// ReactorOutbox keeps the rules of gRPC's callback API in one place: one
// write in flight, headers sent at most once, Finish exactly once and only
// when no write is in flight, nothing touched after Finish. Where the
// messages come from is the subclass's (StreamOutbox: a queue the loop
// pushes into; FollowStream: a cursor into a shared ring).
#ifndef CORRAL_AGENT_RPC_STREAM_REACTOR_H_
#define CORRAL_AGENT_RPC_STREAM_REACTOR_H_

#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/status.h>

#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace corral::agent {

// Threads: Close, SendHeaders and done() from any thread; Attach and the
// On*/Detach calls from StreamReactor (gRPC threads). Subclasses guard
// their own state with mu_ too and call PumpLocked() after changing it;
// anything they lock while mu_ is held comes after mu_ in lock order.
template <typename Msg>
class ReactorOutbox {
 public:
  ReactorOutbox() = default;
  ReactorOutbox(const ReactorOutbox&) = delete;
  ReactorOutbox& operator=(const ReactorOutbox&) = delete;
  virtual ~ReactorOutbox() = default;

  // Ends the stream with `status` once the subclass has nothing more to
  // write (at once when it has nothing yet). The first call wins.
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
    return DoneLocked();
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
    CancelledLocked();
    PumpLocked();
  }
  // OnDone: the reactor is about to be deleted.
  void Detach() {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
    finished_ = true;
  }

 protected:
  // Fills `msg` (a reused message: clear or overwrite it) with the next
  // message to write; false when there is none now. Called only when no
  // write is in flight and the stream is still open.
  virtual bool NextLocked(Msg* msg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  // True when the stream has written all it ever will and ends OK (checked
  // after Close's status, which wins).
  virtual bool EndedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return false;
  }
  // The client went away: drop what would have been written.
  virtual void CancelledLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}

  bool DoneLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return finished_ || cancelled_ || closing_.has_value();
  }
  bool ClosingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closing_.has_value();
  }

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
    if (NextLocked(&in_flight_)) {
      writing_ = true;
      headers_sent_ = true;  // the first message carries them
      reactor_->StartWrite(&in_flight_);
      return;
    }
    if (closing_) return FinishLocked(*closing_);
    if (EndedLocked()) FinishLocked(grpc::Status::OK);
  }

  // Guards this class's state and the subclass's.
  mutable absl::Mutex mu_;

 private:
  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    finished_ = true;
    // After Finish, OnDone may run at any moment on another thread; it
    // waits for mu_ in Detach, and nothing here touches reactor_ again.
    reactor_->Finish(std::move(status));
  }

  grpc::ServerWriteReactor<Msg>* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Must live until OnWriteDone; gRPC reads it outside the lock meanwhile.
  Msg in_flight_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool headers_sent_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> closing_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// The gRPC side of a ReactorOutbox. Create with `new`; gRPC owns it and it
// deletes itself when the call is over.
template <typename Msg>
class StreamReactor final : public grpc::ServerWriteReactor<Msg> {
 public:
  // `on_done` runs once, on a gRPC thread, when the call is over (finished
  // and every operation completed); use it to drop observers.
  StreamReactor(std::shared_ptr<ReactorOutbox<Msg>> outbox,
                std::function<void()> on_done)
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
  const std::shared_ptr<ReactorOutbox<Msg>> outbox_;
  const std::function<void()> on_done_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_STREAM_REACTOR_H_
