// /metrics: the agent's figures in the Prometheus text exposition format
// (version 0.0.4). A snapshot is taken on the loop thread; rendering it is a
// pure function any thread may call.
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
  int by_state[5] = {0, 0, 0, 0, 0};
  int target_workers = 0;
  bool ready = false;
  bool draining = false;
  uint64_t restarts_total = 0;
  AgentCounters counters;
};

// Loop thread only.
MetricsSnapshot TakeMetricsSnapshot(AgentControl& agent);

std::string RenderPrometheus(const MetricsSnapshot& snapshot);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_HTTP_METRICS_H_
