#include "agent/rpc/status_report.h"

#include <chrono>
#include <string>

#include "agent/os/self.h"
#include "google/protobuf/util/time_util.h"

namespace corral::agent {
namespace {

using google::protobuf::util::TimeUtil;

#ifndef CORRAL_VERSION
#define CORRAL_VERSION "dev"
#endif

// A point on the monotonic clock as wall-clock time: now minus its age.
google::protobuf::Timestamp ToWallTime(TimePoint at) {
  const auto age = std::chrono::steady_clock::now() - at;
  const auto wall = std::chrono::system_clock::now() - age;
  return TimeUtil::NanosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          wall.time_since_epoch())
          .count());
}

corral::v1::AgentState AgentStateOf(const Supervisor& s) {
  if (s.shutting_down()) return corral::v1::AGENT_STATE_STOPPING;
  if (s.draining()) return corral::v1::AGENT_STATE_DRAINING;
  return corral::v1::AGENT_STATE_RUNNING;
}

void FillWorker(const AgentControl& agent, const WorkerView& w,
                corral::v1::Worker* out) {
  out->set_slot(w.slot);
  out->set_generation(w.generation);
  out->set_pid(w.pid);
  out->set_state(WorkerStateToProto(w.state));
  if (w.started_at && w.pid != 0) {
    *out->mutable_started_at() = ToWallTime(*w.started_at);
  }
  if (w.ready_at) *out->mutable_ready_since() = ToWallTime(*w.ready_at);
  out->set_restarts(w.restarts);
  out->set_last_exit(w.last_exit);
  out->set_status(w.status);
  if (w.pid == 0) return;
  if (std::optional<WorkerUsage> u = agent.Usage(w.pid)) {
    out->set_cpu_percent(u->cpu_percent);
    out->set_cpu_seconds(u->cpu_seconds);
    out->set_rss_bytes(u->rss_bytes);
  }
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

const char* LevelName(Level level) {
  switch (level) {
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
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
  }
  return corral::v1::WORKER_STATE_UNSPECIFIED;
}

void FillStatus(AgentControl& agent, TimePoint started,
                corral::v1::GetStatusResponse* out) {
  const Supervisor& s = agent.supervisor();
  const Options& options = agent.options();
  out->set_state(AgentStateOf(s));
  out->set_reloading(s.reloading());
  out->set_pid(SelfPid());
  out->set_pid1(SelfPid() == 1);
  *out->mutable_uptime() = TimeUtil::NanosecondsToDuration(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now() - started)
          .count());
  out->set_version(CORRAL_VERSION);
  out->set_ready(s.Ready(options.min_ready));
  out->set_ready_workers(s.ReadyCount());
  out->set_min_ready(options.min_ready);
  out->set_target_workers(s.target_workers());
  out->set_auto_workers(agent.sizing().auto_mode);
  FillSizing(agent.sizing(), out->mutable_sizing());
  FillMemory(agent.sizing(), out->mutable_memory());

  const AgentCounters c = agent.counters();
  corral::v1::Counters* counters = out->mutable_counters();
  counters->set_orphans_reaped(c.orphans_reaped);
  counters->set_notify_rejected(c.notify_rejected);
  counters->set_log_lines_dropped(c.log_lines_dropped);
  counters->set_memory_replacements(c.memory_replacements);
  uint64_t restarts = 0;
  int last_slot = -1;
  for (const WorkerView& w : s.Workers()) {
    FillWorker(agent, w, out->add_workers());
    // During a reload a slot is listed twice; count its restarts once.
    if (w.slot != last_slot) restarts += static_cast<uint64_t>(w.restarts);
    last_slot = w.slot;
  }
  counters->set_worker_restarts(restarts);
  for (const std::string& arg : options.command) out->add_command(arg);
}

corral::v1::Event EventToProto(const Event& event) {
  corral::v1::Event out;
  *out.mutable_time() = ToWallTime(std::chrono::steady_clock::now());
  out.set_level(LevelName(event.level));
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

}  // namespace corral::agent
