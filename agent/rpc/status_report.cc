#include "agent/rpc/status_report.h"

#include <chrono>
#include <string>

#include "agent/supervisor/event_registry.h"
#include "google/protobuf/util/time_util.h"

namespace corral::agent {
namespace {

using google::protobuf::util::TimeUtil;

#ifndef CORRAL_VERSION
#define CORRAL_VERSION "dev"
#endif

google::protobuf::Timestamp WallTimestamp(
    std::chrono::system_clock::time_point wall) {
  return TimeUtil::NanosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          wall.time_since_epoch())
          .count());
}

// A point on the monotonic clock as wall-clock time: the wall clock now
// minus its age at `now` (the monotonic clock's now).
google::protobuf::Timestamp ToWallTime(TimePoint at, TimePoint now) {
  return WallTimestamp(std::chrono::system_clock::now() - (now - at));
}

corral::v1::AgentState AgentStateToProto(AgentMode mode) {
  switch (mode) {
    case AgentMode::kStopping:
      return corral::v1::AGENT_STATE_STOPPING;
    case AgentMode::kDraining:
      return corral::v1::AGENT_STATE_DRAINING;
    case AgentMode::kRunning:
      break;
  }
  return corral::v1::AGENT_STATE_RUNNING;
}

void FillWorker(const WorkerStatus& ws, TimePoint now,
                corral::v1::Worker* out) {
  const WorkerView& w = ws.view;
  out->set_slot(w.slot);
  out->set_generation(w.generation);
  out->set_pid(w.pid);
  out->set_state(WorkerStateToProto(w.state));
  if (w.started_at && w.pid != 0) {
    *out->mutable_started_at() = ToWallTime(*w.started_at, now);
  }
  if (w.ready_at) *out->mutable_ready_since() = ToWallTime(*w.ready_at, now);
  out->set_restarts(w.restarts);
  out->set_last_exit(w.last_exit);
  out->set_status(w.status);
  out->set_not_accepting(w.state == WorkerState::kReady && !w.accepting);
  if (w.pid == 0 || !ws.usage) return;
  out->set_cpu_percent(ws.usage->cpu_percent);
  out->set_cpu_seconds(ws.usage->cpu_seconds);
  out->set_rss_bytes(ws.usage->rss_bytes);
}

void FillSizing(const SizingState& s, corral::v1::Sizing* out) {
  if (s.inputs) {
    const SizingInputs& in = *s.inputs;
    out->set_cgroup_layout(std::string(CgroupLayoutName(in.layout)));
    out->set_affinity_cpus(in.affinity_cpus);
    if (in.cpuset) out->set_cpuset(in.cpuset->cpus);
    for (const CpuQuota& q : in.cpu_quotas) {
      corral::v1::CpuQuota* p = out->add_cpu_quotas();
      p->set_cgroup_version(std::string(CgroupVersionName(q.version)));
      p->set_path(q.path);
      p->set_quota_us(q.quota_us);
      p->set_period_us(q.period_us);
    }
    for (const MemoryLimit& m : in.memory_limits) {
      corral::v1::MemoryLimit* p = out->add_memory_limits();
      p->set_cgroup_version(std::string(CgroupVersionName(m.version)));
      p->set_path(m.path);
      p->set_limit_bytes(m.limit_bytes);
    }
    for (const std::string& note : in.notes) out->add_notes(note);
  }
  if (s.decision) {
    out->set_decided_workers(s.decision->workers);
    out->set_rule(std::string(SizingRuleName(s.decision->rule)));
    out->set_decision(s.decision->explanation);
    out->set_cpu_limit(s.decision->cpu_limit.value_or(0));
  }
}

void FillMemory(const SizingState& s, corral::v1::MemoryBudget* out) {
  if (!s.memory) return;
  out->set_per_worker_bytes(s.memory->per_worker_bytes.value_or(0));
  if (s.memory->limit) out->set_limit_bytes(s.memory->limit->limit_bytes);
  out->set_headroom_bytes(s.memory->headroom_bytes);
  out->set_explanation(s.memory->explanation);
}

void SetField(google::protobuf::Struct* fields, const std::string& key,
              const FieldValue& value) {
  google::protobuf::Value& v = (*fields->mutable_fields())[key];
  if (const auto* i = std::get_if<int64_t>(&value)) {
    v.set_number_value(static_cast<double>(*i));
  } else if (const auto* d = std::get_if<double>(&value)) {
    v.set_number_value(*d);
  } else if (const auto* b = std::get_if<bool>(&value)) {
    v.set_bool_value(*b);
  } else {
    v.set_string_value(std::get<std::string>(value));
  }
}

}  // namespace

corral::v1::WorkerState WorkerStateToProto(WorkerState state) {
  switch (state) {
    case WorkerState::kStarting:
      return corral::v1::WORKER_STATE_STARTING;
    case WorkerState::kReady:
      return corral::v1::WORKER_STATE_READY;
    case WorkerState::kStopping:
      return corral::v1::WORKER_STATE_STOPPING;
    case WorkerState::kBackoff:
      return corral::v1::WORKER_STATE_BACKOFF;
    case WorkerState::kFailed:
      return corral::v1::WORKER_STATE_FAILED;
    case WorkerState::kStopped:
      return corral::v1::WORKER_STATE_STOPPED;
  }
  return corral::v1::WORKER_STATE_UNSPECIFIED;
}

void FillStatus(const AgentStatus& status, TimePoint started, TimePoint now,
                corral::v1::GetStatusResponse* out) {
  out->set_state(AgentStateToProto(status.mode));
  out->set_reloading(status.reloading);
  out->set_pid(status.pid);
  out->set_pid1(status.pid == 1);
  *out->mutable_uptime() = TimeUtil::NanosecondsToDuration(
      std::chrono::duration_cast<std::chrono::nanoseconds>(now - started)
          .count());
  out->set_version(CORRAL_VERSION);
  out->set_ready(status.ready);
  out->set_ready_workers(status.ready_workers);
  out->set_min_ready(status.min_ready);
  out->set_target_workers(status.target_workers);
  out->set_auto_workers(status.auto_workers);
  FillSizing(status.sizing, out->mutable_sizing());
  FillMemory(status.sizing, out->mutable_memory());

  const AgentCounters& c = status.counters;
  corral::v1::Counters* counters = out->mutable_counters();
  counters->set_orphans_reaped(c.orphans_reaped);
  counters->set_notify_rejected(c.notify_rejected);
  counters->set_log_lines_dropped(c.log_lines_dropped);
  counters->set_memory_replacements(c.memory_replacements);
  uint64_t restarts = 0;
  int last_slot = -1;
  for (const WorkerStatus& w : status.workers) {
    FillWorker(w, now, out->add_workers());
    // During a reload a slot is listed twice; count its restarts once.
    if (w.view.slot != last_slot) {
      restarts += static_cast<uint64_t>(w.view.restarts);
    }
    last_slot = w.view.slot;
  }
  counters->set_worker_restarts(restarts);
  for (const std::string& arg : status.command) out->add_command(arg);
}

corral::v1::Event EventToProto(const Event& event) {
  corral::v1::Event out;
  *out.mutable_time() = WallTimestamp(std::chrono::system_clock::now());
  out.set_level(std::string(EventLevelName(event.level)));
  out.set_name(event.name);
  out.set_message(event.msg);
  for (const auto& [key, value] : event.fields) {
    SetField(out.mutable_fields(), key, value);
  }
  return out;
}

corral::v1::LogLine LogToProto(const LogRecord& record) {
  corral::v1::LogLine out;
  out.set_seq(record.seq);
  out.set_time(record.ts);
  out.set_worker(record.slot);
  out.set_generation(record.generation);
  out.set_pid(record.pid);
  out.set_stream(record.stream);
  out.set_text(record.text);
  out.set_cont(record.cont);
  return out;
}

void FillDetails(const WorkerDetails& details, TimePoint now,
                 corral::v1::DescribeWorkerResponse* out) {
  FillWorker(details.status, now, out->mutable_worker());
  for (const std::string& arg : details.command) out->add_command(arg);
  for (const std::string& name : details.env_names) out->add_env_names(name);
  out->set_open_fds(details.open_fds);
  out->set_cwd(details.cwd);
  out->set_exe(details.exe);
}

}  // namespace corral::agent
