#include "agent/rpc/stream_fanout.h"

#include <utility>

#include "agent/rpc/status_report.h"

namespace corral::agent {
namespace {

// Bookkeeping around each entry: the shared_ptr's control block, the ring
// slot, the strings' headers.
constexpr size_t kEntryOverhead = 128;

}  // namespace

// --- StreamPump --------------------------------------------------------------

StreamPump::StreamPump() : thread_([this] { Run(); }) {}

StreamPump::~StreamPump() { Stop(); }

void StreamPump::Wake(std::vector<std::weak_ptr<Pumpable>> streams) {
  absl::MutexLock lock(&mu_);
  if (!stop_) queue_.push_back(std::move(streams));
}

void StreamPump::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void StreamPump::Run() {
  for (;;) {
    std::vector<std::vector<std::weak_ptr<Pumpable>>> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &StreamPump::HasWork));
      if (stop_) return;
      batch.swap(queue_);
    }
    for (auto& streams : batch) {
      for (auto& weak : streams) {
        if (std::shared_ptr<Pumpable> s = weak.lock()) s->Pump();
      }
    }
  }
}

// --- StreamFanout ------------------------------------------------------------

StreamFanout::StreamFanout(AgentControl* agent, StreamLimits limits)
    : agent_(agent),
      limits_(limits),
      events_(limits.event_bytes, &pump_),
      logs_(limits.log_bytes, &pump_) {}

StreamFanout::~StreamFanout() { pump_.Stop(); }

void StreamFanout::Start() {
  agent_->Post([this] {
    // One conversion per event, here: the event's time is now.
    event_observer_ = agent_->AddEventObserver([this](const Event& e) {
      auto proto = std::make_shared<const corral::v1::Event>(EventToProto(e));
      const size_t cost = Cost(*proto);
      events_.Append(std::move(proto), cost);
    });
    log_observer_ = agent_->AddLogObserver(
        [this](const std::shared_ptr<const LogRecord>& r) {
          logs_.Append(r, Cost(*r));
        });
  });
}

void StreamFanout::Stop() {
  // The loop has stopped: this thread is the only one touching the agent.
  if (event_observer_ > 0) agent_->RemoveObserver(event_observer_);
  if (log_observer_ > 0) agent_->RemoveObserver(log_observer_);
  event_observer_ = log_observer_ = 0;
  pump_.Stop();
}

bool StreamFanout::TryAcquire() {
  int open = open_.load(std::memory_order_relaxed);
  do {
    if (open >= limits_.max_streams) return false;
  } while (
      !open_.compare_exchange_weak(open, open + 1, std::memory_order_relaxed));
  return true;
}

void StreamFanout::Release() { open_.fetch_sub(1, std::memory_order_relaxed); }

size_t StreamFanout::Cost(const LogRecord& r) {
  return sizeof(LogRecord) + r.text.capacity() + r.ts.capacity() +
         kEntryOverhead;
}

size_t StreamFanout::Cost(const corral::v1::Event& e) {
  // Struct fields are maps of messages: count them generously.
  return sizeof(corral::v1::Event) + 2 * e.ByteSizeLong() + kEntryOverhead;
}

}  // namespace corral::agent
