// The Supervisor's queries: readiness and the worker table as WorkerViews,
// and the accept watch's verdict that feeds readiness. Split from
// supervisor.cc to keep each file readable; same class, same thread rules.
#include <algorithm>
#include <vector>

#include "agent/supervisor/supervisor.h"

namespace corral::agent {

// --- queries --------------------------------------------------------------

int Supervisor::ReadyCount() const {
  int n = 0;
  for (const Process& p : procs_) {
    if (p.state == WorkerState::kReady && !p.retiring && !p.not_accepting) ++n;
  }
  return n;
}

void Supervisor::SetNotAccepting(const std::vector<pid_t>& pids) {
  for (Process& p : procs_) {
    p.not_accepting = std::find(pids.begin(), pids.end(), p.pid) != pids.end();
  }
}

bool Supervisor::Ready(int min_ready) const {
  return mode_ == Mode::kRunning && ReadyCount() >= min_ready;
}

std::vector<WorkerView> Supervisor::Workers() const {
  std::vector<WorkerView> out;
  for (const Process& p : procs_) {
    WorkerView v;
    v.slot = p.slot;
    v.generation = p.generation;
    v.pid = p.pid;
    v.state = p.state;
    v.started_at = p.spawned_at;
    v.ready_at = p.ready_at;
    v.status = p.status;
    v.accepting = !p.not_accepting;
    if (auto it = slots_.find(p.slot); it != slots_.end()) {
      v.restarts = it->second.restarts;
      v.last_exit = it->second.last_exit;
    }
    out.push_back(v);
  }
  for (const auto& [slot, s] : slots_) {
    if (slot >= target_) continue;
    bool has_process =
        std::any_of(procs_.begin(), procs_.end(),
                    [slot = slot](const Process& p) { return p.slot == slot; });
    if (has_process) continue;
    WorkerView v;
    v.slot = slot;
    v.generation = s.generation;
    // No process: the agent gave up on it, a drain or shutdown stopped it
    // (only Resume starts it again), or a restart is scheduled.
    v.state = s.failed                  ? WorkerState::kFailed
              : mode_ != Mode::kRunning ? WorkerState::kStopped
                                        : WorkerState::kBackoff;
    v.restarts = s.restarts;
    v.last_exit = s.last_exit;
    out.push_back(v);
  }
  std::sort(
      out.begin(), out.end(), [](const WorkerView& a, const WorkerView& b) {
        return a.slot != b.slot ? a.slot < b.slot : a.generation < b.generation;
      });
  return out;
}

}  // namespace corral::agent
