#include "agent/supervisor/scale_progress.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace corral::agent {
namespace {

// The slot's process that serves or is about to (not one being retired).
const WorkerView* Current(const std::vector<WorkerView>& workers, int slot) {
  const WorkerView* found = nullptr;
  for (const WorkerView& w : workers) {
    if (w.slot != slot || w.state == WorkerState::kStopping) continue;
    if (found == nullptr || w.pid != 0) found = &w;
  }
  return found;
}

bool HasProcess(const std::vector<WorkerView>& workers, int slot) {
  return std::any_of(workers.begin(), workers.end(), [slot](const auto& w) {
    return w.slot == slot && w.pid != 0;
  });
}

}  // namespace

std::string ScalePlan::Describe() const {
  std::string out = absl::StrFormat("%d -> %d workers", from, to);
  if (!starting.empty()) {
    absl::StrAppend(&out, ": starting ", absl::StrJoin(starting, ","));
  }
  if (!stopping.empty()) {
    absl::StrAppend(&out, starting.empty() ? ": " : "; ", "stopping ",
                    absl::StrJoin(stopping, ","));
  }
  return out;
}

ScalePlan PlanScale(int from, int to, const std::vector<WorkerView>& workers) {
  ScalePlan plan;
  plan.from = from;
  plan.to = to;
  for (int slot = from; slot < to; ++slot) plan.starting.push_back(slot);
  for (int slot = to; slot < from; ++slot) {
    // A slot with no process (in backoff) has nothing to stop.
    if (HasProcess(workers, slot)) plan.stopping.push_back(slot);
  }
  return plan;
}

ScaleTracker::ScaleTracker(ScalePlan plan,
                           const std::vector<WorkerView>& workers)
    : plan_(std::move(plan)),
      pending_start_(plan_.starting),
      pending_stop_(plan_.stopping) {
  for (const WorkerView& w : workers) {
    if (w.pid != 0 && w.slot >= plan_.to) stopping_pids_[w.slot] = w.pid;
  }
}

ScaleStep ScaleTracker::Step(ScaleStep::Kind kind, int worker, pid_t pid,
                             std::string message) const {
  ScaleStep step;
  step.kind = kind;
  step.worker = worker;
  step.pid = pid;
  step.done = done_count_;
  step.total = static_cast<int>(plan_.starting.size() + plan_.stopping.size());
  step.failed = failed_;
  step.message = std::move(message);
  return step;
}

std::vector<ScaleStep> ScaleTracker::Update(
    const std::vector<WorkerView>& workers, int target, bool running) {
  std::vector<ScaleStep> steps;
  if (done_) return steps;
  if (target != plan_.to || !running) {
    done_ = true;
    steps.push_back(Step(
        ScaleStep::Kind::kEnded, 0, 0,
        !running ? std::string("a drain or shutdown began; the scale is over")
                 : absl::StrFormat("another scale set %d workers; this one "
                                   "is over",
                                   target)));
    return steps;
  }
  std::erase_if(pending_start_, [&](int slot) {
    const WorkerView* w = Current(workers, slot);
    if (w != nullptr && w->pid != 0 && w->state == WorkerState::kReady) {
      ++done_count_;
      steps.push_back(
          Step(ScaleStep::Kind::kReady, slot, w->pid,
               absl::StrFormat("worker %d READY (pid %d)", slot, w->pid)));
      return true;
    }
    if (w != nullptr && w->pid == 0) {
      ++done_count_;
      ++failed_;
      steps.push_back(Step(
          ScaleStep::Kind::kFailed, slot, 0,
          absl::StrFormat("worker %d failed to start (%s); it is %s", slot,
                          w->last_exit.empty() ? "no process" : w->last_exit,
                          w->state == WorkerState::kFailed
                              ? "given up"
                              : "restarted with backoff")));
      return true;
    }
    return false;
  });
  std::erase_if(pending_stop_, [&](int slot) {
    if (HasProcess(workers, slot)) return false;
    ++done_count_;
    steps.push_back(Step(ScaleStep::Kind::kStopped, slot, stopping_pids_[slot],
                         absl::StrFormat("worker %d stopped (pid %d)", slot,
                                         stopping_pids_[slot])));
    return true;
  });
  if (pending_start_.empty() && pending_stop_.empty()) {
    done_ = true;
    const int started = static_cast<int>(plan_.starting.size()) - failed_;
    steps.push_back(Step(
        ScaleStep::Kind::kFinished, 0, 0,
        absl::StrFormat("scale finished: %d -> %d workers, %d started, %d "
                        "stopped%s",
                        plan_.from, plan_.to, started,
                        static_cast<int>(plan_.stopping.size()),
                        failed_ > 0
                            ? absl::StrFormat(", %d failed to start", failed_)
                            : "")));
  }
  return steps;
}

}  // namespace corral::agent
