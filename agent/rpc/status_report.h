// The agent's state as corral.v1 messages: pure conversions of the values
// AgentControl hands out, callable on any thread.
#ifndef CORRAL_AGENT_RPC_STATUS_REPORT_H_
#define CORRAL_AGENT_RPC_STATUS_REPORT_H_

#include "agent/core/control.h"
#include "agent/supervisor/clock.h"
#include "corral/v1/agent.pb.h"

namespace corral::agent {

// Fills `out` with the agent and every worker. `started` is when the control
// plane started (the agent's uptime), `now` the agent clock's time.
void FillStatus(const AgentStatus& status, TimePoint started, TimePoint now,
                corral::v1::GetStatusResponse* out);

// An agent event as the WatchEvents stream sends it, stamped with the wall
// clock now.
corral::v1::Event EventToProto(const Event& event);

// A line of worker output as StreamLogs sends it.
corral::v1::LogLine LogToProto(const LogRecord& record);

corral::v1::WorkerState WorkerStateToProto(WorkerState state);

// One worker in depth (DescribeWorker).
void FillDetails(const WorkerDetails& details, TimePoint now,
                 corral::v1::DescribeWorkerResponse* out);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_STATUS_REPORT_H_
