#include "agent/supervisor/rejection_coalescer.h"

#include <utility>

namespace corral::agent {

RejectionCoalescer::RejectionCoalescer(Duration interval, size_t max_senders)
    : interval_(interval), max_senders_(max_senders) {}

RejectionCoalescer::Report RejectionCoalescer::Close(int64_t pid, Window* w,
                                                     TimePoint now) {
  Report r{pid, w->pending, std::move(w->reason), now - w->start};
  w->start = now;
  w->pending = 0;
  w->reason.clear();
  return r;
}

std::optional<RejectionCoalescer::Report> RejectionCoalescer::Reject(
    TimePoint now, int64_t pid, std::string_view reason) {
  auto it = senders_.find(pid);
  if (it == senders_.end()) {
    if (senders_.size() >= max_senders_) {
      pid = kOtherSenders;
      it = senders_.find(pid);
    }
  }
  if (it == senders_.end()) {
    // A sender not heard from lately: say so at once, with the reason.
    senders_.emplace(pid, Window{now, 0, ""});
    return Report{pid, 1, std::string(reason), Duration::zero()};
  }
  Window& w = it->second;
  if (w.pending == 0) w.reason = std::string(reason);
  ++w.pending;
  if (now - w.start < interval_) return std::nullopt;
  return Close(pid, &w, now);
}

std::vector<RejectionCoalescer::Report> RejectionCoalescer::Flush(
    TimePoint now) {
  std::vector<Report> out;
  for (auto it = senders_.begin(); it != senders_.end();) {
    Window& w = it->second;
    if (now - w.start < interval_) {
      ++it;
    } else if (w.pending == 0) {
      it = senders_.erase(it);  // quiet for a whole interval
    } else {
      out.push_back(Close(it->first, &w, now));
      ++it;
    }
  }
  return out;
}

}  // namespace corral::agent
