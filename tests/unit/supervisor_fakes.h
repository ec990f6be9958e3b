// Test doubles for the supervisor: a clock advanced by hand, a process
// table that records what the supervisor asked for, an event recorder and
// sizing inputs set by hand.
#ifndef CORRAL_TESTS_UNIT_SUPERVISOR_FAKES_H_
#define CORRAL_TESTS_UNIT_SUPERVISOR_FAKES_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/supervisor/clock.h"
#include "agent/supervisor/event.h"
#include "agent/supervisor/event_registry.h"
#include "agent/supervisor/notify_message.h"
#include "agent/supervisor/process_control.h"
#include "agent/supervisor/sizing.h"
#include "agent/supervisor/supervisor.h"
#include "agent/supervisor/worker.h"

namespace corral::agent {

class FakeClock : public Clock {
 public:
  TimePoint Now() const override { return now_; }
  void Advance(Duration d) { now_ += d; }

 private:
  TimePoint now_ = TimePoint() + std::chrono::hours(1);
};

class FakeProcesses : public ProcessControl {
 public:
  struct Signal {
    pid_t target;  // negative: a process group
    int sig;
  };

  absl::StatusOr<pid_t> Spawn(const SpawnRequest& request) override {
    spawns.push_back(request);
    if (fail_spawns > 0) {
      --fail_spawns;
      return absl::NotFoundError("cannot run 'x': no such file (exit 127)");
    }
    pid_t pid = next_pid++;
    alive.insert(pid);
    return pid;
  }
  void SignalGroup(pid_t pgid, int sig) override {
    signals.push_back({-pgid, sig});
  }
  void SignalProcess(pid_t pid, int sig) override {
    signals.push_back({pid, sig});
  }
  int SignalStrays(int sig, const std::vector<pid_t>&) override {
    stray_signals.push_back(sig);
    if (sig == SIGKILL) {
      int n = strays;
      strays = 0;
      return n;
    }
    return strays;
  }
  bool HasChildren() override { return !alive.empty() || strays > 0; }

  // Signals sent to `pid`'s group, in order.
  std::vector<int> GroupSignals(pid_t pid) const {
    std::vector<int> out;
    for (const Signal& s : signals) {
      if (s.target == -pid) out.push_back(s.sig);
    }
    return out;
  }

  std::vector<SpawnRequest> spawns;
  std::vector<Signal> signals;
  std::vector<int> stray_signals;
  std::set<pid_t> alive;
  int fail_spawns = 0;
  int strays = 0;  // live non-worker descendants
  pid_t next_pid = 100;
};

class RecordingSink : public EventSink {
 public:
  void Emit(const Event& event) override {
    // Every event must match its registry entry (and so the docs).
    const absl::Status s = CheckEvent(event);
    EXPECT_TRUE(s.ok()) << s;
    events.push_back(event);
  }
  int Count(std::string_view name) const {
    return static_cast<int>(
        std::count_if(events.begin(), events.end(),
                      [name](const Event& e) { return e.name == name; }));
  }
  const Event* Last(std::string_view name) const {
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      if (it->name == name) return &*it;
    }
    return nullptr;
  }
  std::vector<Event> events;
};

// Returns `inputs` (or `error` when set) on every Read().
class FakeCgroupReader : public CgroupReader {
 public:
  absl::StatusOr<SizingInputs> Read() override {
    ++reads;
    if (!error.ok()) return error;
    return inputs;
  }
  // A CPU quota of `cpus` on an `affinity`-CPU machine (0 = no quota).
  void SetCpus(int affinity, double cpus) {
    inputs.layout = CgroupLayout::kV2;
    inputs.affinity_cpus = affinity;
    inputs.cpu_quotas.clear();
    if (cpus > 0) {
      inputs.cpu_quotas.push_back({CgroupVersion::kV2, "/pod",
                                   static_cast<int64_t>(cpus * 100000),
                                   100000});
    }
  }
  // A memory limit of `bytes` (0 = none).
  void SetMemory(int64_t bytes) {
    inputs.memory_limits.clear();
    if (bytes > 0) {
      inputs.memory_limits.push_back({CgroupVersion::kV2, "/pod", bytes});
    }
  }

  SizingInputs inputs;
  absl::Status error;
  int reads = 0;
};

// Every STARTING worker of `sup` says READY=1, as a worker would.
inline void MarkStartingReady(Supervisor& sup) {
  for (const WorkerView& w : sup.Workers()) {
    if (w.state != WorkerState::kStarting) continue;
    NotifyMessage m;
    m.ready = true;
    sup.OnNotify(w.pid, m);
  }
}

}  // namespace corral::agent

#endif  // CORRAL_TESTS_UNIT_SUPERVISOR_FAKES_H_
