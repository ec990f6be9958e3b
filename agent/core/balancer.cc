#include "agent/core/balancer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/os/fd.h"
#include "agent/os/reuseport.h"
#include "agent/supervisor/round_robin.h"

namespace corral::agent {
namespace {

absl::Status AttachRoundRobin(EbpfRoundRobin& rr, int group_fd,
                              const std::vector<int>& table) {
  return rr.Attach(group_fd, BuildRoundRobinProgram(rr.counter_map(),
                                                    rr.sockets_map(), table));
}

}  // namespace

Balancer::Balancer(BalanceMode mode, EventSink* events)
    : requested_(mode), mode_(mode), events_(events) {}

Balancer::~Balancer() { Release(); }

void Balancer::Release() {
  if (std::exchange(released_, true)) return;
  for (size_t i = 0; i < listeners_.size(); ++i) {
    auto g = groups_.find(i);
    if (g == groups_.end()) {
      CloseListenSocket(listeners_[i]);
      continue;
    }
    for (const auto& [slot, fd] : g->second.fds) CloseFd(fd);
    g->second.fds.clear();
  }
}

absl::Status Balancer::Open(const std::vector<ListenSpec>& specs) {
  for (const ListenSpec& spec : specs) {
    if (spec.is_unix || mode_ == BalanceMode::kShared) {
      absl::StatusOr<OpenListener> l = OpenListenSocket(spec);
      if (!l.ok()) return l.status();
      listeners_.push_back(*l);
      continue;
    }
    absl::StatusOr<TcpListener> first =
        OpenReuseportMember(spec.host, spec.port, /*probe=*/true);
    if (!first.ok()) return first.status();
    Group& g = groups_[listeners_.size()];
    g.host = spec.host;
    g.port = first->port;
    g.v6 = first->v6;
    g.fds[0] = first->fd;
    g.order.Join(0);
    OpenListener l;
    l.fd = first->fd;
    l.address = first->address;
    listeners_.push_back(l);
  }
  if (!groups_.empty()) migrate_ = EnableTcpMigrateReq();
  return ResolveMode();
}

absl::Status Balancer::ResolveMode() {
  // Debian's Abseil has its own string_view type; StrCat takes only that.
  const std::string requested(BalanceModeName(requested_));
  std::string why = "--balance asked for it";
  if (groups_.empty()) {
    // Unix sockets only, or --balance=shared: nothing to steer.
    if (requested_ != BalanceMode::kShared) {
      why = "no tcp --listen; unix sockets are always shared";
    }
    mode_ = BalanceMode::kShared;
  } else if (requested_ == BalanceMode::kAuto ||
             requested_ == BalanceMode::kRoundRobin) {
    absl::Status rr = StartRoundRobin();
    if (rr.ok()) {
      mode_ = BalanceMode::kRoundRobin;
      why = "the kernel loaded the eBPF round-robin program";
    } else if (requested_ == BalanceMode::kRoundRobin) {
      return absl::Status(
          rr.code(), absl::StrCat("--balance=round-robin: ", rr.message(),
                                  "; --balance=reuseport needs no privilege"));
    } else {
      mode_ = BalanceMode::kReuseport;
      why = absl::StrCat("round-robin unavailable: ", rr.message());
    }
  }
  if (listeners_.empty()) return absl::OkStatus();
  const std::string mode(BalanceModeName(mode_));
  events_->Emit(Event{Level::kInfo,
                      "balance_mode",
                      absl::StrCat("new connections: ", mode,
                                   " (--balance=", requested, "; ", why, ")"),
                      {}}
                    .With("mode", mode)
                    .With("requested", requested)
                    .With("reason", why));
  return absl::OkStatus();
}

absl::Status Balancer::StartRoundRobin() {
  for (auto& [index, g] : groups_) {
    absl::StatusOr<std::unique_ptr<EbpfRoundRobin>> rr =
        EbpfRoundRobin::Create();
    absl::Status s = rr.status();
    if (s.ok()) s = (*rr)->AddSocket(0, g.fds.at(0));
    // The full program, once: the verifier's verdict decides auto. Slot 0
    // is the only socket yet; Update replaces it when workers are READY.
    if (s.ok()) s = AttachRoundRobin(**rr, g.fds.at(0), {0});
    if (!s.ok()) {
      // A group given an eBPF program already gets the classic one from
      // the first Update (nothing is steered yet).
      for (auto& [i, other] : groups_) other.rr.reset();
      return s;
    }
    g.rr = std::move(*rr);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int>> Balancer::FdsFor(int slot) {
  if (released_) {
    return absl::FailedPreconditionError(
        "the listening sockets were released for the shutdown");
  }
  std::vector<int> fds;
  for (size_t i = 0; i < listeners_.size(); ++i) {
    auto it = groups_.find(i);
    if (it == groups_.end()) {
      fds.push_back(listeners_[i].fd);
      continue;
    }
    Group& g = it->second;
    if (!g.fds.contains(slot)) {
      absl::StatusOr<TcpListener> m =
          OpenReuseportMember(g.host, g.port, /*probe=*/false);
      if (!m.ok()) {
        Warn(absl::StrCat("worker ", slot, ": ", m.status().message()));
        return m.status();
      }
      g.fds[slot] = m->fd;
      g.order.Join(slot);
      if (g.rr) {
        if (absl::Status s = g.rr->AddSocket(slot, m->fd); !s.ok()) {
          // Its turns fall back to the kernel's hash (the select fails).
          Warn(absl::StrCat(listeners_[i].address, ": worker ", slot, ": ",
                            s.message()));
        }
      }
    }
    fds.push_back(g.fds[slot]);
  }
  return fds;
}

void Balancer::Update(const std::vector<WorkerView>& workers,
                      int target_workers) {
  if (released_) return;  // nothing left to steer or close
  for (auto& [index, g] : groups_) {
    // A reference of its own: clang before 16 cannot capture a structured
    // binding.
    Group& group = g;
    // Scaled-away slots first: closing one renumbers the group.
    for (int slot : ClosableSlots(
             g.order, workers, target_workers, migrate_, [&group](int s) {
               absl::StatusOr<int> n = AcceptQueueLength(group.fds[s]);
               return n.ok() ? *n : 0;
             })) {
      // Steer away from it before it leaves (its index is reused).
      ReuseportGroupMap after = g.order;
      after.Leave(slot);
      CloseFd(g.fds[slot]);
      g.fds.erase(slot);
      g.order = after;
      g.steered.reset();  // indexes moved: a new program
      events_->Emit(Event{Level::kInfo,
                          "balance_slot_closed",
                          absl::StrCat("worker ", slot, " socket on ",
                                       listeners_[index].address, " closed"),
                          {}}
                        .With("worker", int64_t{slot})
                        .With("listen", listeners_[index].address));
    }
    if (g.fds.empty()) continue;
    SteeringTargets targets =
        ChooseSteeringTargets(g.order, workers, target_workers);
    if (targets == g.steered) continue;
    const std::vector<int> slots = RoundRobinTable(g.order, targets);
    if (!Steer(index, g, targets)) continue;
    g.steered = targets;
    events_->Emit(Event{
        Level::kInfo,
        "balance_steering",
        absl::StrCat("new connections on ", listeners_[index].address,
                     " go to worker(s) ", absl::StrJoin(slots, ","),
                     targets.ready ? "" : " (none READY: they wait)"),
        {}}.With("listen", listeners_[index].address)
                      .With("slots", absl::StrJoin(slots, ","))
                      .With("ready", targets.ready));
  }
}

bool Balancer::Steer(size_t index, Group& g, const SteeringTargets& targets) {
  const int fd = g.fds.begin()->second;
  const std::string& address = listeners_[index].address;
  if (g.rr) {
    absl::Status s =
        AttachRoundRobin(*g.rr, fd, RoundRobinTable(g.order, targets));
    if (s.ok()) return true;
    // Never leave the old table in place (it may name a slot that is
    // leaving): the classic program, which needs no privilege, instead.
    Warn(absl::StrCat(address, ": round-robin: ", s.message(),
                      "; steering by source-port hash this time"));
  }
  absl::Status s = AttachSteeringProgram(
      fd, BuildSteeringProgram(mode_, g.v6, targets.indexes));
  if (!s.ok()) {
    Warn(absl::StrCat(address, ": ", s.message()));
    return false;
  }
  return true;
}

bool Balancer::QueueEmpty(int slot) const {
  for (const auto& [index, g] : groups_) {
    auto it = g.fds.find(slot);
    if (it == g.fds.end()) continue;
    absl::StatusOr<int> n = AcceptQueueLength(it->second);
    if (n.ok() && *n > 0) return false;
  }
  return true;
}

std::vector<ListenerSample> Balancer::SampleQueues() const {
  std::vector<ListenerSample> out;
  if (released_) return out;  // the fds are closed (and may be reused)
  for (size_t i = 0; i < listeners_.size(); ++i) {
    ListenerSample sample;
    sample.address = listeners_[i].address;
    sample.worker_fd = 3 + static_cast<int>(i);
    auto g = groups_.find(i);
    if (g == groups_.end()) {
      if (!listeners_[i].path.empty()) continue;  // unix
      absl::StatusOr<int> n = AcceptQueueLength(listeners_[i].fd);
      if (!n.ok()) continue;
      sample.waiting = *n;
      out.push_back(sample);
      continue;
    }
    for (const auto& [slot, fd] : g->second.fds) {
      absl::StatusOr<int> n = AcceptQueueLength(fd);
      if (!n.ok()) continue;
      sample.slot = slot;
      sample.waiting = *n;
      out.push_back(sample);
    }
  }
  return out;
}

std::vector<std::string> Balancer::addresses() const {
  std::vector<std::string> out;
  for (const OpenListener& l : listeners_) out.push_back(l.address);
  return out;
}

void Balancer::Warn(const std::string& message) {
  events_->Emit(Event{Level::kWarn, "balance_failed", message, {}});
}

}  // namespace corral::agent
