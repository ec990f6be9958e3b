// /metrics: the agent's figures in the Prometheus text exposition format
// (version 0.0.4). The snapshot is made from an AgentStatus (taken on the
// loop thread); both functions are pure and any thread may call them.
#ifndef CORRAL_AGENT_HTTP_METRICS_H_
#define CORRAL_AGENT_HTTP_METRICS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "agent/core/control.h"

namespace corral::agent {

// One slot's current process (the one not being replaced during a reload).
struct WorkerMetrics {
  int slot = 0;
  WorkerState state = WorkerState::kStarting;
  int restarts = 0;
  double cpu_seconds = 0;  // of the current process
  int64_t rss_bytes = 0;
};

struct MetricsSnapshot {
  std::vector<WorkerMetrics> workers;  // by slot
  // Processes (and empty slots) by state, every state listed.
  int by_state[6] = {0, 0, 0, 0, 0, 0};  // by WorkerState
  int target_workers = 0;
  bool ready = false;
  bool draining = false;
  uint64_t restarts_total = 0;
  AgentCounters counters;
};

MetricsSnapshot TakeMetricsSnapshot(const AgentStatus& status);

std::string RenderPrometheus(const MetricsSnapshot& snapshot);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_HTTP_METRICS_H_
