// Calls waiting for an answer from the agent's loop.
//
// A gRPC call must be finished exactly once, and the server cannot shut down
// while one is open. Once the agent's loop stops it runs no more posted
// closures, so every call still waiting on one would stay open forever.
// Each waiting call registers here with an `abandon` function; whoever
// finishes the call first (the loop's answer via Take, or the agent stopping
// via AbandonAll) wins, the other does nothing. Thread-safe.
#ifndef CORRAL_AGENT_RPC_PENDING_CALLS_H_
#define CORRAL_AGENT_RPC_PENDING_CALLS_H_

#include <cstdint>
#include <functional>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace corral::agent {

class PendingCalls {
 public:
  PendingCalls() = default;
  PendingCalls(const PendingCalls&) = delete;
  PendingCalls& operator=(const PendingCalls&) = delete;

  // Registers a call and returns its id; 0 when already closed (the agent
  // is stopping): `abandon` is then dropped and the caller finishes the
  // call itself, at once.
  uint64_t Add(std::function<void()> abandon);
  // True when the call was still registered: the caller now owns finishing
  // it. False when it was abandoned (or taken) already.
  bool Take(uint64_t id);
  // Closes the registry and runs every remaining abandon function, outside
  // the lock. Later Add() calls return 0.
  void AbandonAll();

 private:
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::function<void()>> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_PENDING_CALLS_H_
