#include "agent/rpc/health_publisher.h"

namespace corral::agent {

HealthPublisher::HealthPublisher(AgentControl* agent, HealthState* state,
                                 boost::asio::io_context* io)
    : agent_(agent), state_(state), timer_(*io) {}

int64_t HealthPublisher::NowNs() const {
  // clock() may be read from any thread.
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             agent_->clock().Now().time_since_epoch())
      .count();
}

void HealthPublisher::Start() {
  agent_->Post([this] {
    observer_ = agent_->AddEventObserver([this](const Event&) { Publish(); });
    Publish();
  });
  Tick();
}

void HealthPublisher::Stop() {
  timer_.cancel();
  // The loop has stopped, so this thread is the only one left touching the
  // agent.
  if (observer_ > 0) agent_->RemoveObserver(observer_);
  observer_ = 0;
}

void HealthPublisher::Publish() {
  last_answer_ns_.store(NowNs(), std::memory_order_relaxed);
  state_->SetLive(true);
  state_->SetReady(agent_->Ready());
}

void HealthPublisher::Tick() {
  const int64_t last = last_answer_ns_.load(std::memory_order_relaxed);
  const int64_t timeout = std::chrono::nanoseconds(kLivenessTimeout).count();
  if (NowNs() - last > timeout) {
    state_->SetLive(false);
    state_->SetReady(false);
  }
  agent_->Post([this] { Publish(); });
  timer_.expires_after(kHeartbeat);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) Tick();
  });
}

}  // namespace corral::agent
