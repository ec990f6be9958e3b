#include "ctl/commands.h"

#include <google/protobuf/util/time_util.h>

#include <cstdlib>
#include <ctime>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "ctl/render.h"

#ifndef CORRAL_VERSION
#define CORRAL_VERSION "dev"
#endif

namespace corral::ctl {
namespace {

using google::protobuf::util::TimeUtil;

std::string Counters(const corral::v1::Counters& c) {
  return absl::StrFormat(
      "restarts %d, orphans reaped %d, notify rejected %d, log lines dropped "
      "%d, memory replacements %d",
      c.worker_restarts(), c.orphans_reaped(), c.notify_rejected(),
      c.log_lines_dropped(), c.memory_replacements());
}

std::string StatusText(const corral::v1::GetStatusResponse& s) {
  Table t({"", ""});
  t.AddRow({"agent",
            absl::StrFormat(
                "%s%s, pid %d%s, up %s, corral %s", AgentStateName(s.state()),
                s.reloading() ? " (reloading)" : "", s.pid(),
                s.pid1() ? " (PID 1)" : "",
                FormatDuration(TimeUtil::DurationToSeconds(s.uptime())),
                s.version())});
  std::string ready = absl::StrFormat(
      "%s: %d of %d workers READY (need %d)", s.ready() ? "yes" : "no",
      s.ready_workers(), s.target_workers(), s.min_ready());
  if (s.state() == corral::v1::AGENT_STATE_DRAINING) {
    absl::StrAppend(&ready, "; drained: corralctl resume brings them back");
  }
  for (const corral::v1::Worker& w : s.workers()) {
    if (w.not_accepting()) {
      absl::StrAppend(&ready, "; worker ", w.slot(),
                      " is READY but not accepting");
    }
  }
  t.AddRow({"ready", ready});
  t.AddRow({"workers",
            absl::StrFormat("%d, %s", s.target_workers(),
                            s.auto_workers()
                                ? "auto: " + s.sizing().decision()
                                : std::string("fixed (corralctl scale auto "
                                              "to follow the CPU limit)"))});
  t.AddRow({"memory",
            s.memory().per_worker_bytes() > 0
                ? absl::StrFormat("%s per worker: %s",
                                  FormatBytes(s.memory().per_worker_bytes()),
                                  s.memory().explanation())
                : std::string("no per-worker bound")});
  t.AddRow({"counters", Counters(s.counters())});
  t.AddRow({"command", absl::StrJoin(s.command(), " ")});
  std::string out = t.Render();
  out.erase(0, out.find('\n') + 1);  // the empty header row
  return absl::StrCat(out, "\n", WorkerTable(s));
}

bool GetStatus(Connection& c, corral::v1::GetStatusResponse* out, int* code) {
  auto context = c.Context();
  grpc::Status s = c.agent().GetStatus(context.get(), {}, out);
  if (!s.ok()) *code = c.Fail("status", s);
  return s.ok();
}

// Prints a unary answer: JSON with -o json, else `text`.
int Done(Connection& c, const google::protobuf::Message& reply,
         const std::string& text) {
  Print(c.settings().json ? ToJson(reply, true) : text + "\n");
  return kOk;
}

std::string ProgressText(const corral::v1::ReloadProgress& p) {
  using corral::v1::ReloadProgress;
  switch (p.phase()) {
    case ReloadProgress::STARTED:
      return absl::StrFormat("reload: rolling %d worker(s), one at a time",
                             p.total());
    case ReloadProgress::SLOT_DONE:
      return absl::StrFormat("  [%d/%d] worker %d: pid %d replaced by %d",
                             p.done(), p.total(), p.worker(), p.old_pid(),
                             p.new_pid());
    case ReloadProgress::FINISHED:
      return absl::StrFormat("reload finished: %d of %d worker(s) rolled",
                             p.done(), p.total());
    default:
      return "";
  }
}

std::string EventText(const corral::v1::Event& e) {
  // Local wall-clock time with milliseconds, like a log line.
  const time_t seconds = static_cast<time_t>(e.time().seconds());
  tm local{};
  localtime_r(&seconds, &local);
  return absl::StrFormat("%02d:%02d:%02d.%03d %-5s %s: %s", local.tm_hour,
                         local.tm_min, local.tm_sec, e.time().nanos() / 1000000,
                         e.level(), e.name(), e.message());
}

}  // namespace

int Status(Connection& c) {
  corral::v1::GetStatusResponse s;
  int code = kOk;
  if (!GetStatus(c, &s, &code)) return code;
  Print(c.settings().json ? ToJson(s, true) : StatusText(s));
  return kOk;
}

int Ps(Connection& c) {
  corral::v1::GetStatusResponse s;
  int code = kOk;
  if (!GetStatus(c, &s, &code)) return code;
  if (!c.settings().json) {
    Print(WorkerTable(s));
    return kOk;
  }
  std::vector<std::string> workers;
  for (const corral::v1::Worker& w : s.workers()) {
    std::string one = ToJson(w, false);
    one.pop_back();
    workers.push_back(one);
  }
  Print(absl::StrCat("[", absl::StrJoin(workers, ",\n "), "]\n"));
  return kOk;
}

int Describe(Connection& c, int worker) {
  corral::v1::DescribeWorkerRequest request;
  request.set_worker(worker);
  corral::v1::DescribeWorkerResponse d;
  auto context = c.Context();
  grpc::Status s = c.agent().DescribeWorker(context.get(), request, &d);
  if (!s.ok()) return c.Fail("describe", s);
  if (c.settings().json) {
    Print(ToJson(d, true));
    return kOk;
  }
  Print(DescribeText(d));
  return kOk;
}

namespace {

std::string ScaleStepText(const corral::v1::ScaleProgress& p, bool no_wait) {
  using corral::v1::ScaleProgress;
  switch (p.phase()) {
    case ScaleProgress::PLANNED:
      return absl::StrCat(
          p.message(),
          p.plan().auto_workers() ? " (auto: following the CPU limit)" : "",
          no_wait && p.total() > 0 ? " (not waiting: corralctl ps shows them)"
                                   : "");
    case ScaleProgress::WORKER_READY:
    case ScaleProgress::WORKER_FAILED:
    case ScaleProgress::WORKER_STOPPED:
      return absl::StrFormat("  [%d/%d] %s", p.done(), p.total(), p.message());
    default:
      return p.message();
  }
}

// An agent without ScaleWithProgress: the unary Scale, as before.
int ScaleOnce(Connection& c, const corral::v1::ScaleRequest& request) {
  corral::v1::ScaleResponse reply;
  auto context = c.Context();
  grpc::Status s = c.agent().Scale(context.get(), request, &reply);
  if (!s.ok()) return c.Fail("scale", s);
  return Done(
      c, reply,
      absl::StrFormat(
          "scaled: %d -> %d workers%s", reply.previous_workers(),
          reply.target_workers(),
          reply.auto_workers() ? " (auto: following the CPU limit)" : ""));
}

}  // namespace

int Scale(Connection& c, const std::string& count, bool no_wait) {
  corral::v1::ScaleRequest request;
  int workers = 0;
  if (count == "auto") {
    request.set_auto_workers(true);
  } else if (absl::SimpleAtoi(count, &workers)) {
    request.set_workers(workers);
  } else {
    return Complain(kUsage,
                    absl::StrFormat("scale: '%s' is not a count; give a "
                                    "number of workers, or auto",
                                    count));
  }
  using corral::v1::ScaleProgress;
  // Waiting lasts as long as new workers take to get READY: no deadline
  // then (the answer itself comes at once).
  auto context = c.Context(/*deadline=*/no_wait);
  auto reader = c.agent().ScaleWithProgress(context.get(), request);
  ScaleProgress p;
  ScaleProgress last;
  bool any = false;
  while (reader->Read(&p)) {
    any = true;
    Print(c.settings().json ? ToJson(p, false)
                            : ScaleStepText(p, no_wait) + "\n");
    last = p;
    if (no_wait && p.phase() == ScaleProgress::PLANNED) {
      context->TryCancel();
      break;
    }
  }
  grpc::Status s = reader->Finish();
  if (!any && s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    return ScaleOnce(c, request);
  }
  if (no_wait && any) return kOk;
  if (!s.ok()) return c.Fail("scale", s);
  if (last.phase() == ScaleProgress::ENDED) {
    return Complain(kFailed, absl::StrCat("scale: ", last.message()));
  }
  if (last.failed() > 0) {
    return Complain(kFailed,
                    absl::StrFormat("scale: %d new worker(s) failed to start; "
                                    "corralctl ps and corralctl logs show why",
                                    last.failed()));
  }
  return kOk;
}

int Reload(Connection& c) {
  auto context = c.Context(/*deadline=*/false);
  auto reader = c.agent().Reload(context.get(), {});
  corral::v1::ReloadProgress p;
  while (reader->Read(&p)) {
    if (c.settings().json) {
      Print(ToJson(p, false));
    } else if (std::string text = ProgressText(p); !text.empty()) {
      Print(text + "\n");
    }
  }
  grpc::Status s = reader->Finish();
  return s.ok() ? kOk : c.Fail("reload", s);
}

int Drain(Connection& c) {
  corral::v1::DrainResponse reply;
  auto context = c.Context();
  grpc::Status s = c.agent().Drain(context.get(), {}, &reply);
  if (!s.ok()) return c.Fail("drain", s);
  return Done(c, reply,
              absl::StrFormat(
                  "draining: not ready from now on; workers get SIGTERM "
                  "in %s (corralctl resume to start them again)",
                  absl::FormatDuration(absl::Milliseconds(
                      TimeUtil::DurationToMilliseconds(reply.drain_delay())))));
}

int Resume(Connection& c) {
  corral::v1::ResumeResponse reply;
  auto context = c.Context();
  grpc::Status s = c.agent().Resume(context.get(), {}, &reply);
  if (!s.ok()) return c.Fail("resume", s);
  return Done(c, reply, "resumed: starting workers again");
}

int Stop(Connection& c, bool quick) {
  corral::v1::ShutdownRequest request;
  request.set_quick(quick);
  corral::v1::ShutdownResponse reply;
  auto context = c.Context();
  grpc::Status s = c.agent().Shutdown(context.get(), request, &reply);
  if (!s.ok()) return c.Fail("stop", s);
  return Done(c, reply,
              quick ? "stopping now: workers get SIGTERM, then the agent exits"
                    : "stopping: the agent drains its workers, then exits");
}

int Restart(Connection& c, int worker) {
  corral::v1::RestartWorkerRequest request;
  request.set_worker(worker);
  corral::v1::RestartWorkerResponse reply;
  // It answers once the new process is READY: no short deadline.
  auto context = c.Context(/*deadline=*/false);
  grpc::Status s = c.agent().RestartWorker(context.get(), request, &reply);
  if (!s.ok()) return c.Fail("restart", s);
  return Done(
      c, reply,
      absl::StrFormat("worker %d restarted: pid %d replaced by %d",
                      reply.worker(), reply.old_pid(), reply.new_pid()));
}

int Signal(Connection& c, int worker, const std::string& signal) {
  corral::v1::SignalWorkerRequest request;
  request.set_worker(worker);
  request.set_signal(signal);
  corral::v1::SignalWorkerResponse reply;
  auto context = c.Context();
  grpc::Status s = c.agent().SignalWorker(context.get(), request, &reply);
  if (!s.ok()) return c.Fail("signal", s);
  return Done(c, reply,
              absl::StrFormat("sent %s to worker %d (process group %d)",
                              reply.signal(), worker, reply.pid()));
}

int Logs(Connection& c, std::optional<int> worker, int tail, bool follow,
         bool timestamps) {
  corral::v1::StreamLogsRequest request;
  if (worker) request.set_worker(*worker);
  request.set_tail(tail);
  request.set_follow(follow);
  auto context = c.Context(/*deadline=*/!follow);
  auto reader = c.agent().StreamLogs(context.get(), request);
  corral::v1::LogLine line;
  std::map<int, bool> continuing;  // slot -> the last piece had cont=true
  while (reader->Read(&line)) {
    if (c.settings().json) {
      Print(ToJson(line, false));
      continue;
    }
    std::string text;
    if (line.dropped_before() > 0) {
      text = absl::StrFormat(
          "[%d lines skipped: this client read too "
          "slowly]\n",
          line.dropped_before());
    }
    if (!continuing[line.worker()]) {
      // -t: the time the agent read the line (RFC 3339, UTC), as
      // kubectl logs --timestamps prints it.
      if (timestamps) absl::StrAppend(&text, line.time(), " ");
      absl::StrAppend(&text, "[", line.worker(),
                      line.stream() == "stderr" ? " err" : "", "] ");
    }
    absl::StrAppend(&text, line.text(), line.cont() ? "" : "\n");
    continuing[line.worker()] = line.cont();
    Print(text);
  }
  grpc::Status s = reader->Finish();
  return s.ok() ? kOk : c.Fail("logs", s);
}

int Events(Connection& c, const std::vector<std::string>& names) {
  corral::v1::WatchEventsRequest request;
  for (const std::string& name : names) request.add_names(name);
  auto context = c.Context(/*deadline=*/false);
  auto reader = c.agent().WatchEvents(context.get(), request);
  corral::v1::Event e;
  while (reader->Read(&e)) {
    Print(c.settings().json ? ToJson(e, false) : EventText(e) + "\n");
  }
  grpc::Status s = reader->Finish();
  return s.ok() ? kOk : c.Fail("events", s);
}

int Health(Connection& c, std::vector<std::string> services) {
  if (services.empty()) services = {"liveness", "readiness"};
  using grpc::health::v1::HealthCheckResponse;
  bool all_serving = true;
  std::vector<std::string> json;
  Table table({"SERVICE", "STATUS"});
  for (const std::string& service : services) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse reply;
    auto context = c.Context();
    grpc::Status s = c.health().Check(context.get(), request, &reply);
    if (!s.ok()) return c.Fail("health", s);
    const std::string status =
        HealthCheckResponse::ServingStatus_Name(reply.status());
    all_serving = all_serving && reply.status() == HealthCheckResponse::SERVING;
    table.AddRow({service.empty() ? "\"\"" : service, status});
    json.push_back(absl::StrFormat("\"%s\":\"%s\"", service, status));
  }
  Print(c.settings().json ? absl::StrCat("{", absl::StrJoin(json, ","), "}\n")
                          : table.Render());
  return all_serving ? kOk : kFailed;
}

int Version(const Settings& settings) {
  Settings quick = settings;
  quick.timeout = std::chrono::milliseconds(2000);
  Connection c(quick);
  corral::v1::GetStatusResponse s;
  auto context = c.Context();
  grpc::Status status = c.agent().GetStatus(context.get(), {}, &s);
  if (settings.json) {
    Print(absl::StrFormat(
        "{\"corralctl\":\"%s\",\"agent\":%s}\n", CORRAL_VERSION,
        status.ok() ? absl::StrCat("\"", s.version(), "\"") : "null"));
    return kOk;
  }
  Print(absl::StrFormat(
      "corralctl %s\nagent     %s\n", CORRAL_VERSION,
      status.ok() ? absl::StrFormat("%s (pid %d at %s)", s.version(), s.pid(),
                                    settings.socket)
                  : absl::StrFormat("not reachable at %s (%s)", settings.socket,
                                    status.error_message())));
  return kOk;
}

}  // namespace corral::ctl
