// Keeps HealthState true to the agent.
//
//   readiness  the agent's Ready() (--min-ready): recomputed on the loop
//              after every agent event (so Drain and SIGTERM flip it in the
//              same loop turn that starts them) and on every heartbeat.
//   liveness   the loop answers: a heartbeat is posted to the loop every
//              200 ms; when none was answered for a second, liveness and
//              readiness go NOT_SERVING until the loop answers again. It
//              never depends on workers (or on anything they depend on).
//
// Start/Stop run on the thread that owns the agent before/after Run; the
// heartbeat timer runs on the control io_context.
#ifndef CORRAL_AGENT_RPC_HEALTH_PUBLISHER_H_
#define CORRAL_AGENT_RPC_HEALTH_PUBLISHER_H_

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>

#include "agent/core/control.h"
#include "agent/rpc/health_state.h"

namespace corral::agent {

class HealthPublisher {
 public:
  static constexpr auto kHeartbeat = std::chrono::milliseconds(200);
  static constexpr auto kLivenessTimeout = std::chrono::seconds(1);

  // All three must outlive this.
  HealthPublisher(AgentControl* agent, HealthState* state,
                  boost::asio::io_context* io);
  HealthPublisher(const HealthPublisher&) = delete;
  HealthPublisher& operator=(const HealthPublisher&) = delete;

  void Start();
  // REQUIRES: the agent's loop and the io_context no longer run.
  void Stop();

 private:
  // Loop thread.
  void Publish();
  // io thread.
  void Tick();

  // Nanoseconds on the agent's monotonic clock.
  int64_t NowNs() const;

  // Constant after construction.
  AgentControl* const agent_;
  HealthState* const state_;
  boost::asio::steady_timer timer_;

  // When the loop last ran a heartbeat (the agent's clock, ns); 0 = never.
  std::atomic<int64_t> last_answer_ns_{0};
  int observer_ = 0;  // loop thread
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_HEALTH_PUBLISHER_H_
