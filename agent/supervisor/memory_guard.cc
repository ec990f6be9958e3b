#include "agent/supervisor/memory_guard.h"

#include "absl/strings/str_format.h"
#include "agent/supervisor/size_parse.h"

namespace corral::agent {

void MemoryGuard::Sample(TimePoint now,
                         const std::vector<UsageReading>& readings,
                         std::optional<int64_t> bound, Supervisor& supervisor) {
  std::map<pid_t, Tracked> next;
  for (const WorkerView& w : supervisor.Workers()) {
    if (w.pid == 0) continue;
    const UsageReading* reading = nullptr;
    for (const UsageReading& r : readings) {
      if (r.pid == w.pid) reading = &r;
    }
    if (reading == nullptr) continue;
    Tracked t;
    t.at = now;
    t.usage.cpu_seconds = reading->cpu_seconds;
    t.usage.rss_bytes = reading->rss_bytes;
    if (auto it = tracked_.find(w.pid); it != tracked_.end()) {
      const double secs =
          std::chrono::duration<double>(now - it->second.at).count();
      if (secs > 0) {
        t.usage.cpu_percent =
            100.0 * (t.usage.cpu_seconds - it->second.usage.cpu_seconds) / secs;
      }
      t.over = it->second.over;
    }
    if (bound && *bound > 0 && w.state == WorkerState::kReady &&
        t.usage.rss_bytes > *bound) {
      t.over = Enforce(w, t.usage, *bound, t.over + 1, supervisor);
    } else {
      t.over = 0;
    }
    next[w.pid] = t;
  }
  tracked_ = std::move(next);
}

int MemoryGuard::Enforce(const WorkerView& w, const WorkerUsage& usage,
                         int64_t bound, int over, Supervisor& supervisor) {
  if (over < kMemorySamples) return over;
  // Logged before the replacement's own events, once per crossing; a
  // refusal (another roll in progress) is retried every sample and
  // reported once.
  const bool first = over == kMemorySamples;
  if (first) {
    Event e{Level::kWarn,
            "memory_replace",
            absl::StrFormat("worker %d (pid %d) RSS %s is over "
                            "--max-worker-memory %s: replacing it",
                            w.slot, w.pid, FormatSize(usage.rss_bytes),
                            FormatSize(bound)),
            {}};
    e.With("worker", int64_t{w.slot})
        .With("pid", int64_t{w.pid})
        .With("rss_bytes", usage.rss_bytes)
        .With("bound_bytes", bound);
    events_->Emit(e);
  }
  absl::Status s = supervisor.Replace(w.slot, "memory");
  if (s.ok()) {
    ++replacements_;
    return 0;
  }
  if (first) {
    events_->Emit(Event{
        Level::kWarn,
        "memory_replace_refused",
        absl::StrFormat("worker %d: %s; will retry", w.slot, s.message()),
        {}}.With("worker", int64_t{w.slot}));
  }
  return over;
}

std::optional<WorkerUsage> MemoryGuard::Usage(pid_t pid) const {
  auto it = tracked_.find(pid);
  if (it == tracked_.end()) return std::nullopt;
  return it->second.usage;
}

}  // namespace corral::agent
