// The shared side of the following streams (WatchEvents, StreamLogs): one
// ring of recent events and one of worker output, each fed by a single
// observer on the agent's loop, the pump thread that wakes streams, and the
// cap on how many such streams are open at once.
//
// Memory for all following streams together is bounded by the two ring
// budgets plus one message per open stream, however many clients connect
// and however slowly they read (docs/control-plane.md, "Stream limits").
//
// Start/Stop run on the thread that owns the agent, before/after Run; the
// rest is thread-safe.
#ifndef CORRAL_AGENT_RPC_STREAM_FANOUT_H_
#define CORRAL_AGENT_RPC_STREAM_FANOUT_H_

#include <atomic>
#include <cstddef>
#include <memory>

#include "agent/core/control.h"
#include "agent/core/log_record.h"
#include "agent/rpc/follow_ring.h"
#include "corral/v1/agent.pb.h"

namespace corral::agent {

struct StreamLimits {
  // Budget of the event ring (WatchEvents), bytes.
  size_t event_bytes = 4 << 20;
  // Budget of the worker output ring (StreamLogs: tail and follow), bytes.
  size_t log_bytes = 16 << 20;
  // WatchEvents and StreamLogs calls open at once; more are refused with
  // RESOURCE_EXHAUSTED.
  int max_streams = 128;
};

class StreamFanout {
 public:
  // `agent` must outlive this.
  StreamFanout(AgentControl* agent, StreamLimits limits);
  StreamFanout(const StreamFanout&) = delete;
  StreamFanout& operator=(const StreamFanout&) = delete;
  ~StreamFanout();

  // Subscribes the rings to the agent's events and worker output.
  void Start();
  // Unsubscribes and stops the pump thread.
  // REQUIRES: the agent's loop no longer runs, and no stream is open.
  void Stop();

  FollowRing<corral::v1::Event>& events() { return events_; }
  FollowRing<LogRecord>& logs() { return logs_; }

  // Takes one of the `max_streams` places; false when none is free. A
  // successful call is paired with one Release().
  bool TryAcquire();
  void Release();
  const StreamLimits& limits() const { return limits_; }

  // What a ring entry costs against its budget.
  static size_t Cost(const LogRecord& r);
  static size_t Cost(const corral::v1::Event& e);

 private:
  // Constant after construction.
  AgentControl* const agent_;
  const StreamLimits limits_;

  StreamPump pump_;
  FollowRing<corral::v1::Event> events_;
  FollowRing<LogRecord> logs_;
  std::atomic<int> open_{0};
  int event_observer_ = 0;  // loop thread
  int log_observer_ = 0;    // loop thread
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_STREAM_FANOUT_H_
