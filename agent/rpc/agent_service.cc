#include "agent/rpc/agent_service.h"

#include <signal.h>

#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_format.h"
#include "agent/os/signals.h"
#include "agent/rpc/grpc_status.h"
#include "agent/rpc/status_report.h"
#include "google/protobuf/util/time_util.h"

namespace corral::agent {
namespace {

// Messages a stream may hold for a slow client before dropping the oldest.
constexpr size_t kMaxQueuedEvents = 4096;
constexpr size_t kMaxQueuedLines = 8192;  // > the agent's 5000-line history
constexpr size_t kMaxQueuedProgress = 1024;

int64_t IntField(const Event& e, std::string_view key) {
  const FieldValue* v = e.Find(key);
  if (v == nullptr) return 0;
  if (const auto* i = std::get_if<int64_t>(v)) return *i;
  if (const auto* d = std::get_if<double>(v)) return static_cast<int64_t>(*d);
  return 0;
}

absl::Status NoSuchWorker(const Supervisor& s, int slot) {
  return absl::NotFoundError(absl::StrFormat(
      "no worker %d: workers are numbered 0 to %d (see corralctl ps)", slot,
      s.target_workers() - 1));
}

// The process to signal for `slot`: its current one (during a reload the old
// process is STOPPING and the new one is not).
absl::StatusOr<pid_t> WorkerProcess(const Supervisor& s, int slot) {
  std::optional<WorkerView> found;
  for (const WorkerView& w : s.Workers()) {
    if (w.slot != slot) continue;
    if (!found || (found->pid == 0) ||
        (found->state == WorkerState::kStopping && w.pid != 0)) {
      found = w;
    }
  }
  if (!found) return NoSuchWorker(s, slot);
  if (found->pid == 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "worker %d has no running process (it is %s); try again once it "
        "restarted",
        slot, WorkerStateName(found->state)));
  }
  return found->pid;
}

// Loop-thread state of one Reload stream or RestartWorker call. Observers
// are copied by the agent on every event, so mutable state lives here.
struct RolloutTrack {
  int total = 0;
  int done = 0;
  int old_pid = 0;
  int new_pid = 0;
  bool over = false;
};

corral::v1::ReloadProgress Progress(corral::v1::ReloadProgress::Phase phase,
                                    const Event& e, const RolloutTrack& t) {
  corral::v1::ReloadProgress p;
  p.set_phase(phase);
  p.set_worker(static_cast<int32_t>(IntField(e, "worker")));
  p.set_old_pid(static_cast<int32_t>(IntField(e, "old_pid")));
  p.set_new_pid(static_cast<int32_t>(IntField(e, "new_pid")));
  p.set_done(t.done);
  p.set_total(t.total);
  p.set_message(e.msg);
  return p;
}

}  // namespace

AgentService::AgentService(AgentControl* agent, PendingCalls* pending,
                           TimePoint started)
    : agent_(agent), pending_(pending), started_(started) {}

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

// --- unary calls ------------------------------------------------------------

grpc::ServerUnaryReactor* AgentService::GetStatus(
    grpc::CallbackServerContext* context, const corral::v1::GetStatusRequest*,
    corral::v1::GetStatusResponse* response) {
  return Answer(context, [this, response] {
    FillStatus(*agent_, started_, response);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AgentService::Scale(
    grpc::CallbackServerContext* context,
    const corral::v1::ScaleRequest* request,
    corral::v1::ScaleResponse* response) {
  std::optional<int> workers;
  if (request->target_case() == corral::v1::ScaleRequest::kWorkers) {
    workers = request->workers();
  } else if (!request->auto_workers()) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        "say how many workers: set `workers` to a count, or `auto_workers` "
        "to follow the CPU limit"));
    return reactor;
  }
  return Answer(context, [this, workers, response] {
    const int previous = agent_->supervisor().target_workers();
    if (absl::Status s = agent_->ScaleTo(workers); !s.ok()) {
      return ToGrpcStatus(s);
    }
    response->set_previous_workers(previous);
    response->set_target_workers(agent_->supervisor().target_workers());
    response->set_auto_workers(agent_->sizing().auto_mode);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AgentService::Drain(
    grpc::CallbackServerContext* context, const corral::v1::DrainRequest*,
    corral::v1::DrainResponse* response) {
  return Answer(context, [this, response] {
    if (absl::Status s = agent_->supervisor().Drain(); !s.ok()) {
      return ToGrpcStatus(s);
    }
    *response->mutable_drain_delay() =
        google::protobuf::util::TimeUtil::NanosecondsToDuration(
            agent_->options().drain_delay.count());
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AgentService::Resume(
    grpc::CallbackServerContext* context, const corral::v1::ResumeRequest*,
    corral::v1::ResumeResponse*) {
  return Answer(context,
                [this] { return ToGrpcStatus(agent_->supervisor().Resume()); });
}

grpc::ServerUnaryReactor* AgentService::Shutdown(
    grpc::CallbackServerContext* context,
    const corral::v1::ShutdownRequest* request, corral::v1::ShutdownResponse*) {
  const bool quick = request->quick();
  return Answer(context, [this, quick] {
    Supervisor& s = agent_->supervisor();
    // Asking twice is not a second SIGTERM unless asked to be quick.
    if (!s.shutting_down()) s.Shutdown(SIGTERM);
    if (quick) s.Shutdown(SIGTERM);
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
    absl::StatusOr<pid_t> pid = WorkerProcess(agent_->supervisor(), slot);
    if (!pid.ok()) return ToGrpcStatus(pid.status());
    // The loop thread is the one that reaps, so `pid` cannot have been
    // reaped and reused between the lookup and this kill. The worker leads
    // its process group: the signal reaches a shell wrapper's children too.
    if (absl::Status s = agent_->SignalWorkerGroup(*pid, sig); !s.ok()) {
      return ToGrpcStatus(s);
    }
    response->set_pid(*pid);
    response->set_signal(SignalName(sig));
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
    // The restart is a one-slot rollout: it ends with reload_finished or
    // reload_aborted. Only one rollout runs at a time, so the next of
    // those events is ours. The observer goes in first: an exec failure
    // aborts inside RestartWorker() itself.
    auto track = std::make_shared<RolloutTrack>();
    auto observer = std::make_shared<int>(0);
    *observer = agent->AddEventObserver([=](const Event& e) {
      if (track->over) return;
      if (e.name == "reload_slot_done") {
        track->old_pid = static_cast<int>(IntField(e, "old_pid"));
        track->new_pid = static_cast<int>(IntField(e, "new_pid"));
        return;
      }
      if (e.name != "reload_finished" && e.name != "reload_aborted") return;
      track->over = true;
      agent->RemoveObserver(*observer);
      if (e.name == "reload_aborted") {
        return call.Finish(grpc::Status(grpc::StatusCode::ABORTED, e.msg));
      }
      if (!call.Claim()) return;
      response->set_worker(slot);
      response->set_old_pid(track->old_pid);
      response->set_new_pid(track->new_pid);
      call.reactor->Finish(grpc::Status::OK);
    });
    if (absl::Status s = agent->RestartWorker(slot); !s.ok()) {
      track->over = true;
      agent->RemoveObserver(*observer);
      call.Finish(ToGrpcStatus(s));
    }
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
        auto track = std::make_shared<RolloutTrack>();
        track->total = agent->supervisor().target_workers();
        // Registered before Reload(): it emits reload_started (and, with
        // nothing to roll, reload_finished) before it returns.
        const int id = agent->AddEventObserver([out, track](const Event& e) {
          if (e.name == "reload_started") {
            out->Push(Progress(ReloadProgress::STARTED, e, *track));
          } else if (e.name == "reload_slot_done") {
            track->done++;
            out->Push(Progress(ReloadProgress::SLOT_DONE, e, *track));
          } else if (e.name == "reload_finished") {
            out->Push(Progress(ReloadProgress::FINISHED, e, *track));
            out->Close(grpc::Status::OK);
          } else if (e.name == "reload_aborted") {
            out->Push(Progress(ReloadProgress::ABORTED, e, *track));
            out->Close(grpc::Status(grpc::StatusCode::ABORTED, e.msg));
          }
        });
        if (absl::Status s = agent->supervisor().Reload(); !s.ok()) {
          out->Close(ToGrpcStatus(s));
        }
        return id;
      });
}

grpc::ServerWriteReactor<corral::v1::Event>* AgentService::WatchEvents(
    grpc::CallbackServerContext*,
    const corral::v1::WatchEventsRequest* request) {
  std::set<std::string> names(request->names().begin(), request->names().end());
  AgentControl* agent = agent_;
  return OpenStream<corral::v1::Event>(
      kMaxQueuedEvents, grpc::Status::OK,
      [agent, names](std::shared_ptr<StreamOutbox<corral::v1::Event>> out) {
        return agent->AddEventObserver([out, names](const Event& e) {
          if (names.empty() || names.count(e.name)) out->Push(EventToProto(e));
        });
      });
}

grpc::ServerWriteReactor<corral::v1::LogLine>* AgentService::StreamLogs(
    grpc::CallbackServerContext*,
    const corral::v1::StreamLogsRequest* request) {
  std::optional<int> slot;
  if (request->has_worker()) slot = request->worker();
  const int tail = request->tail();
  const bool follow = request->follow();
  AgentControl* agent = agent_;
  return OpenStream<corral::v1::LogLine>(
      kMaxQueuedLines, grpc::Status::OK,
      [agent, slot, tail,
       follow](std::shared_ptr<StreamOutbox<corral::v1::LogLine>> out) {
        const Supervisor& s = agent->supervisor();
        if (tail < 0) {
          out->Close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  absl::StrFormat("tail is %d: give a number "
                                                  "of lines, 0 or more",
                                                  tail)));
          return 0;
        }
        if (slot && (*slot < 0 || *slot >= s.target_workers())) {
          out->Close(ToGrpcStatus(NoSuchWorker(s, *slot)));
          return 0;
        }
        // Tail and subscription in one loop turn: no line lost or doubled.
        for (const LogRecord& r :
             agent->TailLogs(slot, static_cast<size_t>(tail))) {
          out->Push(LogToProto(r));
        }
        if (!follow) {
          out->Close(grpc::Status::OK);
          return 0;
        }
        return agent->AddLogObserver([out, slot](const LogRecord& r) {
          if (!slot || r.slot == *slot) out->Push(LogToProto(r));
        });
      });
}

}  // namespace corral::agent
