#include "agent/rpc/pending_calls.h"

#include <utility>

namespace corral::agent {

uint64_t PendingCalls::Add(std::function<void()> abandon) {
  absl::MutexLock lock(&mu_);
  if (closed_) return 0;
  const uint64_t id = next_id_++;
  calls_.emplace(id, std::move(abandon));
  return id;
}

bool PendingCalls::Take(uint64_t id) {
  absl::MutexLock lock(&mu_);
  return calls_.erase(id) == 1;
}

void PendingCalls::AbandonAll() {
  std::map<uint64_t, std::function<void()>> calls;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    calls.swap(calls_);
  }
  for (auto& [id, abandon] : calls) abandon();
}

}  // namespace corral::agent
