#include "agent/rpc/health_state.h"

#include <utility>

namespace corral::agent {

void HealthState::SetLive(bool live) {
  absl::MutexLock lock(&mu_);
  if (!shut_down_) SetLocked(kLivenessService, live);
}

void HealthState::SetReady(bool ready) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  SetLocked(kReadinessService, ready);
  SetLocked("", ready);
}

void HealthState::Shutdown() {
  absl::MutexLock lock(&mu_);
  for (auto& [service, serving] : serving_) SetLocked(service, false);
  shut_down_ = true;
}

std::optional<bool> HealthState::Get(const std::string& service) const {
  absl::MutexLock lock(&mu_);
  auto it = serving_.find(service);
  if (it == serving_.end()) return std::nullopt;
  return it->second;
}

int HealthState::Watch(const std::string& service, Watcher watcher) {
  absl::MutexLock lock(&mu_);
  auto it = serving_.find(service);
  watcher(it == serving_.end() ? std::nullopt : std::optional(it->second));
  const int id = next_id_++;
  watchers_.emplace(id, std::make_pair(service, std::move(watcher)));
  return id;
}

void HealthState::Unwatch(int id) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(id);
}

void HealthState::SetLocked(const std::string& service, bool serving) {
  bool& current = serving_[service];
  if (current == serving) return;
  current = serving;
  for (auto& [id, watch] : watchers_) {
    if (watch.first == service) watch.second(serving);
  }
}

}  // namespace corral::agent
