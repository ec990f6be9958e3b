// corral.v1.Agent, answered by the agent's loop.
//
// Handlers run on gRPC's threads and never touch agent state there: each one
// posts its work to the loop (AgentControl::Post) and the call is finished
// from the loop's typed answer or from the rollout's callbacks (Reload,
// RestartWorker). WatchEvents and StreamLogs read from StreamFanout's rings
// (follow_stream.h): the loop only starts them.
// Agent errors are passed on as they are (ToGrpcStatus). Every waiting
// call is registered in PendingCalls so it is still finished, UNAVAILABLE,
// when the agent stops before answering. Thread-safe.
#ifndef CORRAL_AGENT_RPC_AGENT_SERVICE_H_
#define CORRAL_AGENT_RPC_AGENT_SERVICE_H_

#include <functional>
#include <memory>

#include "agent/core/control.h"
#include "agent/rpc/follow_stream.h"
#include "agent/rpc/pending_calls.h"
#include "agent/rpc/stream_fanout.h"
#include "agent/rpc/write_stream.h"
#include "agent/supervisor/clock.h"
#include "corral/v1/agent.grpc.pb.h"

namespace corral::agent {

class AgentService final : public corral::v1::Agent::CallbackService {
 public:
  // `agent`, `pending` and `streams` must outlive the gRPC servers this is
  // registered with. `started` is reported as the agent's start (uptime).
  AgentService(AgentControl* agent, PendingCalls* pending,
               StreamFanout* streams, TimePoint started);
  AgentService(const AgentService&) = delete;
  AgentService& operator=(const AgentService&) = delete;

  // corral::v1::Agent::CallbackService
  grpc::ServerUnaryReactor* GetStatus(
      grpc::CallbackServerContext* context,
      const corral::v1::GetStatusRequest* request,
      corral::v1::GetStatusResponse* response) override;
  grpc::ServerUnaryReactor* Scale(grpc::CallbackServerContext* context,
                                  const corral::v1::ScaleRequest* request,
                                  corral::v1::ScaleResponse* response) override;
  grpc::ServerWriteReactor<corral::v1::ScaleProgress>* ScaleWithProgress(
      grpc::CallbackServerContext* context,
      const corral::v1::ScaleRequest* request) override;
  grpc::ServerWriteReactor<corral::v1::ReloadProgress>* Reload(
      grpc::CallbackServerContext* context,
      const corral::v1::ReloadRequest* request) override;
  grpc::ServerUnaryReactor* Drain(grpc::CallbackServerContext* context,
                                  const corral::v1::DrainRequest* request,
                                  corral::v1::DrainResponse* response) override;
  grpc::ServerUnaryReactor* Resume(
      grpc::CallbackServerContext* context,
      const corral::v1::ResumeRequest* request,
      corral::v1::ResumeResponse* response) override;
  grpc::ServerUnaryReactor* Shutdown(
      grpc::CallbackServerContext* context,
      const corral::v1::ShutdownRequest* request,
      corral::v1::ShutdownResponse* response) override;
  grpc::ServerUnaryReactor* RestartWorker(
      grpc::CallbackServerContext* context,
      const corral::v1::RestartWorkerRequest* request,
      corral::v1::RestartWorkerResponse* response) override;
  grpc::ServerUnaryReactor* SignalWorker(
      grpc::CallbackServerContext* context,
      const corral::v1::SignalWorkerRequest* request,
      corral::v1::SignalWorkerResponse* response) override;
  grpc::ServerWriteReactor<corral::v1::Event>* WatchEvents(
      grpc::CallbackServerContext* context,
      const corral::v1::WatchEventsRequest* request) override;
  grpc::ServerUnaryReactor* DescribeWorker(
      grpc::CallbackServerContext* context,
      const corral::v1::DescribeWorkerRequest* request,
      corral::v1::DescribeWorkerResponse* response) override;
  grpc::ServerWriteReactor<corral::v1::LogLine>* StreamLogs(
      grpc::CallbackServerContext* context,
      const corral::v1::StreamLogsRequest* request) override;

 private:
  // A unary call finished from the loop: `Finish` wins only once (see
  // PendingCalls).
  struct UnaryCall {
    grpc::ServerUnaryReactor* reactor;
    PendingCalls* pending;
    uint64_t id;
    // True when the caller may fill the response and finish the call.
    bool Claim() const { return pending->Take(id); }
    void Finish(grpc::Status status) const;
  };
  // Runs `work` on the loop with the call; `work` finishes it (now, or
  // later from an observer) through UnaryCall::Finish.
  grpc::ServerUnaryReactor* OnLoop(grpc::CallbackServerContext* context,
                                   std::function<void(const UnaryCall&)> work);
  // The common case: `work`'s status finishes the call at once.
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context,
                                   std::function<grpc::Status()> work);

  // Opens a server stream. `subscribe` runs on the loop with the outbox and
  // returns the observer id to remove when the call ends (0 = none); the
  // response headers go out right after it (a client may wait for them to
  // know its watch is in place). When the agent stops, the stream ends with
  // `on_stop`.
  template <typename Msg>
  grpc::ServerWriteReactor<Msg>* OpenStream(
      size_t max_queued, grpc::Status on_stop,
      std::function<int(std::shared_ptr<StreamOutbox<Msg>>)> subscribe);

  // Opens a stream that reads from one of StreamFanout's rings, or refuses
  // it (RESOURCE_EXHAUSTED) when the most streams are open. `start` runs on
  // the loop, checks the request and starts (or closes) the stream; the
  // response headers go out right after it. When the agent stops, the
  // stream ends (OK) once it has sent what the ring holds for it.
  template <typename T, typename Msg>
  grpc::ServerWriteReactor<Msg>* OpenFollow(
      std::shared_ptr<FollowStream<T, Msg>> stream,
      std::function<void(FollowStream<T, Msg>&)> start);

  // Constant after construction.
  AgentControl* const agent_;
  PendingCalls* const pending_;
  StreamFanout* const streams_;
  const TimePoint started_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_AGENT_SERVICE_H_
