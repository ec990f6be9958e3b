#include "agent/rpc/agent_service.h"

#include <algorithm>
#include <csignal>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_format.h"
#include "agent/os/signals.h"
#include "agent/rpc/grpc_status.h"
#include "agent/rpc/status_report.h"
#include "agent/rpc/stream_reactor.h"
#include "google/protobuf/util/time_util.h"

namespace corral::agent {
namespace {

// Messages a Reload stream may hold for a slow client before dropping the
// oldest (a rollout sends two per slot).
constexpr size_t kMaxQueuedProgress = 1024;
// The most lines StreamLogs sends before following (fewer when the ring's
// budget holds fewer).
constexpr int kMaxTail = 5000;

// Turns one Reload's rollout into ReloadProgress messages on its stream;
// the stream ends with the rollout. Loop thread only.
class ReloadStream final : public RolloutObserver {
 public:
  using Outbox = StreamOutbox<corral::v1::ReloadProgress>;
  explicit ReloadStream(std::shared_ptr<Outbox> out) : out_(std::move(out)) {}

  void OnStarted(const RolloutStep& step) override {
    total_ = step.total;
    Push(corral::v1::ReloadProgress::STARTED, step);
  }
  void OnSlotDone(const RolloutStep& step) override {
    ++done_;
    Push(corral::v1::ReloadProgress::SLOT_DONE, step);
  }
  void OnFinished(const RolloutStep& step) override {
    Push(corral::v1::ReloadProgress::FINISHED, step);
    out_->Close(grpc::Status::OK);
  }
  void OnAborted(const RolloutStep& step) override {
    Push(corral::v1::ReloadProgress::ABORTED, step);
    out_->Close(grpc::Status(grpc::StatusCode::ABORTED, step.message));
  }

 private:
  void Push(corral::v1::ReloadProgress::Phase phase, const RolloutStep& step) {
    corral::v1::ReloadProgress p;
    p.set_phase(phase);
    p.set_worker(step.worker);
    p.set_old_pid(step.old_pid);
    p.set_new_pid(step.new_pid);
    p.set_done(done_);
    p.set_total(total_);
    p.set_message(step.message);
    out_->Push(std::move(p));
  }

  const std::shared_ptr<Outbox> out_;
  int total_ = 0;
  int done_ = 0;
};

void FillScaleResponse(const ScaleResult& r, corral::v1::ScaleResponse* out) {
  out->set_previous_workers(r.previous_workers);
  out->set_target_workers(r.target_workers);
  out->set_auto_workers(r.auto_workers);
  for (int slot : r.starting) out->add_starting(slot);
  for (int slot : r.stopping) out->add_stopping(slot);
}

corral::v1::ScaleProgress ScaleStepToProto(const ScaleStep& step) {
  using corral::v1::ScaleProgress;
  corral::v1::ScaleProgress p;
  switch (step.kind) {
    case ScaleStep::Kind::kReady:
      p.set_phase(ScaleProgress::WORKER_READY);
      break;
    case ScaleStep::Kind::kFailed:
      p.set_phase(ScaleProgress::WORKER_FAILED);
      break;
    case ScaleStep::Kind::kStopped:
      p.set_phase(ScaleProgress::WORKER_STOPPED);
      break;
    case ScaleStep::Kind::kFinished:
      p.set_phase(ScaleProgress::FINISHED);
      break;
    case ScaleStep::Kind::kEnded:
      p.set_phase(ScaleProgress::ENDED);
      break;
  }
  p.set_worker(step.worker);
  p.set_pid(step.pid);
  p.set_done(step.done);
  p.set_total(step.total);
  p.set_failed(step.failed);
  p.set_message(step.message);
  return p;
}

// "say how many workers" when the request has neither field, else nullopt
// with `workers` set (nullopt = auto).
std::optional<grpc::Status> ReadScaleRequest(
    const corral::v1::ScaleRequest& request, std::optional<int>* workers) {
  if (request.target_case() == corral::v1::ScaleRequest::kWorkers) {
    *workers = request.workers();
  } else if (!request.auto_workers()) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        "say how many workers: set `workers` to a count, or `auto_workers` "
        "to follow the CPU limit");
  }
  return std::nullopt;
}

}  // namespace

AgentService::AgentService(AgentControl* agent, PendingCalls* pending,
                           StreamFanout* streams, TimePoint started)
    : agent_(agent), pending_(pending), streams_(streams), started_(started) {}

// --- plumbing ---------------------------------------------------------------

grpc::ServerUnaryReactor* AgentService::OnLoop(
    grpc::CallbackServerContext* context,
    std::function<void(const UnaryCall&)> work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const uint64_t id =
      pending_->Add([reactor] { reactor->Finish(AgentStoppedStatus()); });
  if (id == 0) {
    reactor->Finish(AgentStoppedStatus());
    return reactor;
  }
  agent_->Post([call = UnaryCall{reactor, pending_, id},
                work = std::move(work)] { work(call); });
  return reactor;
}

grpc::ServerUnaryReactor* AgentService::Answer(
    grpc::CallbackServerContext* context, std::function<grpc::Status()> work) {
  return OnLoop(context, [work = std::move(work)](const UnaryCall& call) {
    // The response is filled only when this call still owns it.
    if (call.Claim()) call.reactor->Finish(work());
  });
}

void AgentService::UnaryCall::Finish(grpc::Status status) const {
  if (Claim()) reactor->Finish(std::move(status));
}

template <typename Msg>
grpc::ServerWriteReactor<Msg>* AgentService::OpenStream(
    size_t max_queued, grpc::Status on_stop,
    std::function<int(std::shared_ptr<StreamOutbox<Msg>>)> subscribe) {
  auto outbox = std::make_shared<StreamOutbox<Msg>>(max_queued);
  // The observer id: written and read on the loop thread only.
  auto observer = std::make_shared<int>(0);
  const uint64_t id =
      pending_->Add([outbox, on_stop] { outbox->Close(on_stop); });
  AgentControl* agent = agent_;
  PendingCalls* pending = pending_;
  auto* reactor =
      new StreamReactor<Msg>(outbox, [agent, pending, id, observer] {
        pending->Take(id);
        agent->Post([agent, observer] {
          if (*observer > 0) agent->RemoveObserver(*observer);
          *observer = -1;  // ended: a late subscribe must not register
        });
      });
  if (id == 0) {
    outbox->Close(AgentStoppedStatus());
    return reactor;
  }
  agent_->Post([outbox, observer, subscribe = std::move(subscribe)] {
    if (*observer < 0 || outbox->done()) return;
    *observer = subscribe(outbox);
    // Headers now: a client that waits for them knows it misses nothing
    // from here on.
    outbox->SendHeaders();
  });
  return reactor;
}

template <typename T, typename Msg>
grpc::ServerWriteReactor<Msg>* AgentService::OpenFollow(
    std::shared_ptr<FollowStream<T, Msg>> stream,
    std::function<void(FollowStream<T, Msg>&)> start) {
  using Reactor = StreamReactor<Msg>;
  StreamFanout* streams = streams_;
  if (!streams->TryAcquire()) {
    auto* reactor = new Reactor(stream, nullptr);
    stream->Close(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrFormat("too many streams (%d): the agent serves at most %d "
                        "WatchEvents and StreamLogs calls at once; close one "
                        "(e.g. a corralctl logs -f or events) and retry",
                        streams->limits().max_streams,
                        streams->limits().max_streams)));
    return reactor;
  }
  const uint64_t id =
      pending_->Add([stream] { stream->Close(grpc::Status::OK); });
  PendingCalls* pending = pending_;
  auto* reactor = new Reactor(stream, [pending, id, streams] {
    pending->Take(id);
    streams->Release();
  });
  if (id == 0) {
    stream->Close(AgentStoppedStatus());
    return reactor;
  }
  agent_->Post([stream, start = std::move(start)] {
    if (stream->done()) return;
    start(*stream);
    // Headers now: a client that waits for them knows it misses nothing
    // from here on.
    stream->SendHeaders();
  });
  return reactor;
}

// --- unary calls ------------------------------------------------------------

grpc::ServerUnaryReactor* AgentService::GetStatus(
    grpc::CallbackServerContext* context, const corral::v1::GetStatusRequest*,
    corral::v1::GetStatusResponse* response) {
  return Answer(context, [this, response] {
    FillStatus(agent_->Status(), started_, agent_->clock().Now(), response);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AgentService::DescribeWorker(
    grpc::CallbackServerContext* context,
    const corral::v1::DescribeWorkerRequest* request,
    corral::v1::DescribeWorkerResponse* response) {
  const int worker = request->worker();
  return Answer(context, [this, worker, response] {
    absl::StatusOr<WorkerDetails> d = agent_->DescribeWorker(worker);
    if (!d.ok()) return ToGrpcStatus(d.status());
    FillDetails(*d, agent_->clock().Now(), response);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AgentService::Scale(
    grpc::CallbackServerContext* context,
    const corral::v1::ScaleRequest* request,
    corral::v1::ScaleResponse* response) {
  std::optional<int> workers;
  if (std::optional<grpc::Status> bad = ReadScaleRequest(*request, &workers)) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(*bad);
    return reactor;
  }
  return Answer(context, [this, workers, response] {
    absl::StatusOr<ScaleResult> r = agent_->Scale(workers, nullptr);
    if (!r.ok()) return ToGrpcStatus(r.status());
    FillScaleResponse(*r, response);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AgentService::Drain(
    grpc::CallbackServerContext* context, const corral::v1::DrainRequest*,
    corral::v1::DrainResponse* response) {
  return Answer(context, [this, response] {
    absl::StatusOr<DrainResult> r = agent_->Drain();
    if (!r.ok()) return ToGrpcStatus(r.status());
    *response->mutable_drain_delay() =
        google::protobuf::util::TimeUtil::NanosecondsToDuration(
            r->drain_delay.count());
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AgentService::Resume(
    grpc::CallbackServerContext* context, const corral::v1::ResumeRequest*,
    corral::v1::ResumeResponse*) {
  return Answer(context, [this] { return ToGrpcStatus(agent_->Resume()); });
}

grpc::ServerUnaryReactor* AgentService::Shutdown(
    grpc::CallbackServerContext* context,
    const corral::v1::ShutdownRequest* request, corral::v1::ShutdownResponse*) {
  const bool quick = request->quick();
  return Answer(context, [this, quick] {
    agent_->Shutdown(quick);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AgentService::SignalWorker(
    grpc::CallbackServerContext* context,
    const corral::v1::SignalWorkerRequest* request,
    corral::v1::SignalWorkerResponse* response) {
  const int sig = ParseSignal(request->signal().c_str());
  if (sig <= 0) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrFormat("unknown signal '%s': use a name such as SIGUSR1, "
                        "HUP or TERM, or a number from 1 to %d",
                        request->signal(), NSIG - 1)));
    return reactor;
  }
  const int slot = request->worker();
  return Answer(context, [this, slot, sig, response] {
    absl::StatusOr<SignalResult> r = agent_->SignalWorker(slot, sig);
    if (!r.ok()) return ToGrpcStatus(r.status());
    response->set_pid(r->pid);
    response->set_signal(SignalName(r->signal));
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AgentService::RestartWorker(
    grpc::CallbackServerContext* context,
    const corral::v1::RestartWorkerRequest* request,
    corral::v1::RestartWorkerResponse* response) {
  const int slot = request->worker();
  AgentControl* agent = agent_;
  return OnLoop(context, [agent, slot, response](const UnaryCall& call) {
    absl::Status s = agent->RestartWorker(
        slot, [call, response](absl::StatusOr<RestartResult> r) {
          if (!r.ok()) return call.Finish(ToGrpcStatus(r.status()));
          if (!call.Claim()) return;
          response->set_worker(r->worker);
          response->set_old_pid(r->old_pid);
          response->set_new_pid(r->new_pid);
          call.reactor->Finish(grpc::Status::OK);
        });
    if (!s.ok()) call.Finish(ToGrpcStatus(s));
  });
}

// --- streams ----------------------------------------------------------------

grpc::ServerWriteReactor<corral::v1::ReloadProgress>* AgentService::Reload(
    grpc::CallbackServerContext*, const corral::v1::ReloadRequest*) {
  using corral::v1::ReloadProgress;
  AgentControl* agent = agent_;
  return OpenStream<ReloadProgress>(
      kMaxQueuedProgress, AgentStoppedStatus(),
      [agent](std::shared_ptr<StreamOutbox<ReloadProgress>> out) {
        // The stream follows this rollout only; it ends with it.
        if (absl::Status s = agent->Reload(std::make_shared<ReloadStream>(out));
            !s.ok()) {
          out->Close(ToGrpcStatus(s));
        }
        return 0;
      });
}

grpc::ServerWriteReactor<corral::v1::ScaleProgress>*
AgentService::ScaleWithProgress(grpc::CallbackServerContext*,
                                const corral::v1::ScaleRequest* request) {
  using corral::v1::ScaleProgress;
  std::optional<int> workers;
  std::optional<grpc::Status> bad = ReadScaleRequest(*request, &workers);
  AgentControl* agent = agent_;
  return OpenStream<ScaleProgress>(
      kMaxQueuedProgress, AgentStoppedStatus(),
      [agent, workers, bad](std::shared_ptr<StreamOutbox<ScaleProgress>> out) {
        if (bad) {
          out->Close(*bad);
          return 0;
        }
        absl::StatusOr<ScaleResult> r =
            agent->Scale(workers, [out](const ScaleStep& step) {
              out->Push(ScaleStepToProto(step));
              if (step.kind == ScaleStep::Kind::kFinished ||
                  step.kind == ScaleStep::Kind::kEnded) {
                out->Close(grpc::Status::OK);
              }
            });
        if (!r.ok()) {
          out->Close(ToGrpcStatus(r.status()));
          return 0;
        }
        // Progress comes after this loop turn: the plan goes first.
        ScaleProgress planned;
        planned.set_phase(ScaleProgress::PLANNED);
        FillScaleResponse(*r, planned.mutable_plan());
        planned.set_total(
            static_cast<int>(r->starting.size() + r->stopping.size()));
        planned.set_message(absl::StrFormat(
            "scaling %s", ScalePlan{r->previous_workers, r->target_workers,
                                    r->starting, r->stopping}
                              .Describe()));
        out->Push(std::move(planned));
        return 0;
      });
}

grpc::ServerWriteReactor<corral::v1::Event>* AgentService::WatchEvents(
    grpc::CallbackServerContext*,
    const corral::v1::WatchEventsRequest* request) {
  using corral::v1::Event;
  std::set<std::string> names(request->names().begin(), request->names().end());
  FollowRing<Event>* ring = &streams_->events();
  auto stream = std::make_shared<FollowStream<Event, Event>>(
      ring,
      [names = std::move(names)](const Event& e) {
        return names.empty() || names.count(e.name()) > 0;
      },
      [](const Event& e, Event* out) { *out = e; });
  return OpenFollow<Event, Event>(std::move(stream),
                                  [ring](FollowStream<Event, Event>& s) {
                                    s.Start(ring->end_seq(), std::nullopt);
                                  });
}

grpc::ServerWriteReactor<corral::v1::LogLine>* AgentService::StreamLogs(
    grpc::CallbackServerContext*,
    const corral::v1::StreamLogsRequest* request) {
  using corral::v1::LogLine;
  std::optional<int> slot;
  if (request->has_worker()) slot = request->worker();
  const int tail = request->tail();
  const bool follow = request->follow();
  auto match = [slot](const LogRecord& r) { return !slot || r.slot == *slot; };
  FollowRing<LogRecord>* ring = &streams_->logs();
  auto stream = std::make_shared<FollowStream<LogRecord, LogLine>>(
      ring, match,
      [](const LogRecord& r, LogLine* out) { *out = LogToProto(r); });
  AgentControl* agent = agent_;
  return OpenFollow<LogRecord, LogLine>(
      std::move(stream), [agent, ring, slot, tail, follow,
                          match](FollowStream<LogRecord, LogLine>& s) {
        if (tail < 0) {
          return s.Close(grpc::Status(
              grpc::StatusCode::INVALID_ARGUMENT,
              absl::StrFormat("tail is %d: give a number of lines, 0 or more",
                              tail)));
        }
        if (slot) {
          if (absl::Status st = agent->CheckWorker(*slot); !st.ok()) {
            return s.Close(ToGrpcStatus(st));
          }
        }
        // On the loop, the only thread that appends: the tail and the
        // lines after it meet with none lost or doubled.
        const uint64_t end = ring->end_seq();
        const uint64_t from =
            tail == 0
                ? end
                : ring->TailCursor(
                      static_cast<size_t>(std::min(tail, kMaxTail)), match);
        s.Start(from, follow ? std::nullopt : std::optional<uint64_t>(end));
      });
}

}  // namespace corral::agent
