// The supervisor under test on fakes: a FakeClock advanced by hand,
// FakeProcesses, a RecordingSink, and helpers that play the workers' part.
#ifndef CORRAL_TESTS_UNIT_SUPERVISOR_FIXTURE_H_
#define CORRAL_TESTS_UNIT_SUPERVISOR_FIXTURE_H_

#include <gtest/gtest.h>

#include <memory>

#include "agent/supervisor/supervisor.h"
#include "tests/unit/supervisor_fakes.h"

namespace corral::agent {

class SupervisorTest : public ::testing::Test {
 protected:
  void Make(SupervisorConfig config) {
    sup_ = std::make_unique<Supervisor>(config, &clock_, &procs_, &sink_,
                                        [] { return 0.5; });  // no jitter
  }
  void Start(int workers) {
    SupervisorConfig c = config_;
    c.workers = workers;
    Make(c);
    sup_->Start();
  }
  // The pid of the latest spawn of `slot`.
  pid_t PidOf(int slot) const {
    for (const WorkerView& w : sup_->Workers()) {
      if (w.slot == slot && w.pid != 0 && w.state != WorkerState::kStopping) {
        return w.pid;
      }
    }
    return 0;
  }
  void Ready(pid_t pid) {
    NotifyMessage m;
    m.ready = true;
    sup_->OnNotify(pid, m);
  }
  void ReadyAll() {
    for (const WorkerView& w : sup_->Workers()) {
      if (w.state == WorkerState::kStarting) Ready(w.pid);
    }
  }
  bool Exit(pid_t pid, ExitStatus status) {
    procs_.alive.erase(pid);
    return sup_->OnExit(pid, status);
  }
  // Advances the clock by `d` and ticks once.
  void AdvanceTo(Duration d) {
    clock_.Advance(d);
    sup_->Tick();
  }
  // Slots with a live process (STARTING or READY): those that serve or are
  // about to.
  int Running() const {
    int n = 0;
    for (const WorkerView& w : sup_->Workers()) {
      if (w.pid != 0 && w.state != WorkerState::kStopping) ++n;
    }
    return n;
  }
  Duration NextIn() const {
    auto next = sup_->NextDeadline();
    return next ? *next - clock_.Now() : Duration::max();
  }

  SupervisorConfig config_;
  FakeClock clock_;
  FakeProcesses procs_;
  RecordingSink sink_;
  std::unique_ptr<Supervisor> sup_;
};

}  // namespace corral::agent

#endif  // CORRAL_TESTS_UNIT_SUPERVISOR_FIXTURE_H_
