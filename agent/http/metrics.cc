#include "agent/http/metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace corral::agent {
namespace {

constexpr WorkerState kStates[] = {
    WorkerState::kStarting, WorkerState::kReady,  WorkerState::kStopping,
    WorkerState::kBackoff,  WorkerState::kFailed, WorkerState::kStopped};

void Header(std::string* out, const char* name, const char* type,
            const char* help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type,
                  "\n");
}

void Sample(std::string* out, const char* name, double value) {
  absl::StrAppend(out, name, " ", absl::StrFormat("%.17g", value), "\n");
}

void Family(std::string* out, const char* name, const char* type,
            const char* help, double value) {
  Header(out, name, type, help);
  Sample(out, name, value);
}

template <typename Value>
void PerWorker(std::string* out, const MetricsSnapshot& s, const char* name,
               const char* type, const char* help, Value value) {
  Header(out, name, type, help);
  for (const WorkerMetrics& w : s.workers) {
    absl::StrAppend(out, name, "{worker=\"", w.slot, "\"} ",
                    absl::StrFormat("%.17g", static_cast<double>(value(w))),
                    "\n");
  }
}

int Rank(WorkerState state) {
  switch (state) {
    case WorkerState::kReady:
      return 2;
    case WorkerState::kStarting:
      return 1;
    default:
      return 0;
  }
}

}  // namespace

MetricsSnapshot TakeMetricsSnapshot(const AgentStatus& status) {
  MetricsSnapshot s;
  s.target_workers = status.target_workers;
  s.ready = status.ready;
  s.draining = status.mode != AgentMode::kRunning;
  s.counters = status.counters;
  for (const WorkerStatus& ws : status.workers) {
    const WorkerView& w = ws.view;
    s.by_state[static_cast<int>(w.state)]++;
    // During a reload a slot has two processes: report the one serving
    // (READY before STARTING before STOPPING).
    const bool same_slot =
        !s.workers.empty() && s.workers.back().slot == w.slot;
    if (same_slot && Rank(w.state) < Rank(s.workers.back().state)) continue;
    if (same_slot) s.workers.pop_back();
    WorkerMetrics m;
    m.slot = w.slot;
    m.state = w.state;
    m.restarts = w.restarts;
    if (w.pid != 0 && ws.usage) {
      m.cpu_seconds = ws.usage->cpu_seconds;
      m.rss_bytes = ws.usage->rss_bytes;
    }
    s.workers.push_back(m);
  }
  for (const WorkerMetrics& w : s.workers) s.restarts_total += w.restarts;
  return s;
}

std::string RenderPrometheus(const MetricsSnapshot& s) {
  std::string out;
  Header(&out, "corral_worker_state", "gauge",
         "1 for the state each worker slot is in, 0 for the others.");
  for (const WorkerMetrics& w : s.workers) {
    for (WorkerState state : kStates) {
      absl::StrAppend(&out, "corral_worker_state{worker=\"", w.slot,
                      "\",state=\"", WorkerStateName(state), "\"} ",
                      w.state == state ? 1 : 0, "\n");
    }
  }
  PerWorker(&out, s, "corral_worker_restarts_total", "counter",
            "Restarts of the slot after its process exited on its own.",
            [](const WorkerMetrics& w) { return w.restarts; });
  PerWorker(&out, s, "corral_worker_cpu_seconds_total", "counter",
            "User and system CPU time of the slot's current process.",
            [](const WorkerMetrics& w) { return w.cpu_seconds; });
  PerWorker(&out, s, "corral_worker_resident_memory_bytes", "gauge",
            "Resident set size of the slot's current process.",
            [](const WorkerMetrics& w) { return w.rss_bytes; });
  Header(&out, "corral_workers", "gauge",
         "Worker processes and empty slots by state.");
  for (WorkerState state : kStates) {
    absl::StrAppend(&out, "corral_workers{state=\"", WorkerStateName(state),
                    "\"} ", s.by_state[static_cast<int>(state)], "\n");
  }
  Family(&out, "corral_workers_target", "gauge",
         "Worker slots the agent keeps.", s.target_workers);
  Family(&out, "corral_ready", "gauge",
         "1 when not draining and at least --min-ready workers are READY.",
         s.ready ? 1 : 0);
  Family(&out, "corral_draining", "gauge", "1 while drained or shutting down.",
         s.draining ? 1 : 0);
  Family(&out, "corral_restarts_total", "counter",
         "Worker restarts, all slots.", static_cast<double>(s.restarts_total));
  Family(&out, "corral_orphans_reaped_total", "counter",
         "Adopted processes (not workers) the agent reaped.",
         static_cast<double>(s.counters.orphans_reaped));
  Family(&out, "corral_log_lines_dropped_total", "counter",
         "Log lines dropped because the agent's stdout did not keep up.",
         static_cast<double>(s.counters.log_lines_dropped));
  // By slot: a slow stdout takes lines from the loudest worker first.
  Header(&out, "corral_worker_log_lines_dropped_total", "counter",
         "Log lines of the slot dropped because stdout did not keep up.");
  for (const auto& [source, count] : s.counters.log_lines_dropped_by_source) {
    if (source < 0) continue;  // the agent's own lines: in the total only
    absl::StrAppend(&out, "corral_worker_log_lines_dropped_total{worker=\"",
                    source, "\"} ", count, "\n");
  }
  Family(&out, "corral_notify_rejected_total", "counter",
         "Notify messages dropped: no credentials, not a worker, malformed.",
         static_cast<double>(s.counters.notify_rejected));
  Family(&out, "corral_memory_replacements_total", "counter",
         "Workers replaced for passing --max-worker-memory.",
         static_cast<double>(s.counters.memory_replacements));
  return out;
}

}  // namespace corral::agent
