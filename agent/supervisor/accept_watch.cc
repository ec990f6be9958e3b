#include "agent/supervisor/accept_watch.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace corral::agent {
namespace {

std::string Slots(const std::vector<int>& slots) {
  return absl::StrJoin(slots, ",");
}

}  // namespace

AcceptWatch::AcceptWatch(Duration bound, EventSink* events)
    : bound_(bound), events_(events) {}

std::vector<pid_t> AcceptWatch::Observe(
    TimePoint now, const std::vector<ListenerSample>& samples,
    const std::vector<WorkerView>& workers) {
  std::vector<pid_t> stalled;
  std::map<std::pair<std::string, int>, Watch> seen;
  for (const ListenerSample& sample : samples) {
    std::vector<Taker> takers;
    for (const WorkerView& w : workers) {
      if (w.state != WorkerState::kReady || w.pid == 0) continue;
      if (sample.slot && w.slot != *sample.slot) continue;
      takers.push_back({w.slot, w.pid});
    }
    const auto key = std::make_pair(sample.address, sample.slot.value_or(-1));
    Watch w = watches_[key];
    if (Update(now, sample, takers, w)) {
      for (const Taker& t : w.takers) stalled.push_back(t.pid);
    }
    seen[key] = std::move(w);
  }
  watches_ = std::move(seen);  // sockets closed since are forgotten
  std::sort(stalled.begin(), stalled.end());
  stalled.erase(std::unique(stalled.begin(), stalled.end()), stalled.end());
  return stalled;
}

bool AcceptWatch::Update(TimePoint now, const ListenerSample& sample,
                         std::vector<Taker> takers, Watch& w) {
  const bool same_takers = takers == w.takers;
  const bool took = sample.waiting == 0 || (w.since && sample.waiting < w.last);
  if (takers.empty() || took || !same_takers) {
    // Nothing to take, someone took, or other workers now: a new window.
    // Only the same workers taking again ends a stall out loud; a stalled
    // worker that went away says nothing.
    if (w.stalled && took && same_takers && !takers.empty()) {
      EmitResumed(sample, w);
    }
    w.since.reset();
    w.stalled = false;
    if (!took && !takers.empty()) w.since = now;
  } else if (!w.since) {
    w.since = now;
  } else if (!w.stalled && now - *w.since >= bound_) {
    w.stalled = true;
    EmitStalled(now, sample, w);
  }
  w.takers = std::move(takers);
  w.last = sample.waiting;
  return w.stalled;
}

void AcceptWatch::EmitStalled(TimePoint now, const ListenerSample& sample,
                              const Watch& w) {
  std::vector<int> slots;
  for (const Taker& t : w.takers) slots.push_back(t.slot);
  const std::string who =
      slots.size() == 1
          ? absl::StrFormat("worker %d (pid %d) is READY but has not", slots[0],
                            w.takers[0].pid)
          : absl::StrFormat("workers %s are READY but none has", Slots(slots));
  const double ms = ToMillis(now - *w.since);
  events_->Emit(Event{
      Level::kWarn,
      "accept_stalled",
      absl::StrFormat(
          "%s accepted for %.1fs while %d connection(s) wait on %s: "
          "does the app listen on fd %d (LISTEN_FDS)? Not ready until "
          "it accepts",
          who, ms / 1000, sample.waiting, sample.address, sample.worker_fd),
      {}}.With("listen", sample.address)
                    .With("workers", Slots(slots))
                    .With("waiting", int64_t{sample.waiting})
                    .With("stalled_ms", ms)
                    .With("fd", int64_t{sample.worker_fd}));
}

void AcceptWatch::EmitResumed(const ListenerSample& sample, const Watch& w) {
  std::vector<int> slots;
  for (const Taker& t : w.takers) slots.push_back(t.slot);
  events_->Emit(Event{Level::kInfo,
                      "accept_resumed",
                      absl::StrFormat("connections on %s are accepted again: "
                                      "worker(s) %s count as ready",
                                      sample.address, Slots(slots)),
                      {}}
                    .With("listen", sample.address)
                    .With("workers", Slots(slots)));
}

}  // namespace corral::agent
