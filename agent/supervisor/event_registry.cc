#include "agent/supervisor/event_registry.h"

#include <algorithm>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace corral::agent {
namespace {

using T = FieldType;

// Debian's Abseil has its own string_view type; StrCat takes only that one.
absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }

// Fields that several events share.
constexpr FieldSpec kWorker{"worker", T::kInt, false, ""};
constexpr FieldSpec kGen{"gen", T::kInt, false, ""};
constexpr FieldSpec kPid{"pid", T::kInt, false, ""};
constexpr FieldSpec kExitCode{"code", T::kInt, true, "when it exited"};
constexpr FieldSpec kExitSignal{"signal", T::kString, true,
                                "when a signal killed it"};
constexpr FieldSpec kSignal{"signal", T::kString, false, ""};
constexpr FieldSpec kFrom{"from", T::kInt, false, ""};
constexpr FieldSpec kTo{"to", T::kInt, false, ""};
constexpr FieldSpec kReason{"reason", T::kString, false, ""};
constexpr FieldSpec kCount{"count", T::kInt, false, ""};

// Grouped as a reader meets them: start-up, a worker's life, signals and
// notify, rolls, scaling and memory, drain and shutdown, control plane.
constexpr EventSpec kEvents[] = {
    // --- start-up
    {"sizing_failed", kWarn,
     "the CPU limits could not be read at start; the worker count falls back "
     "to the affinity mask"},
    {"sizing",
     kInfo,
     "the worker-count decision at start, and again whenever the cgroup "
     "limits change under a running agent; `msg` is the decision line with "
     "every input",
     {{{"workers", T::kInt, false, ""},
       {"auto", T::kBool, false, ""},
       {"rule", T::kString, false, ""}}}},
    {"balance_mode",
     kInfo,
     "how new TCP connections are spread, once at start (only with a "
     "`--listen`): `mode` is the one in effect, `requested` the `--balance` "
     "value; `auto` becomes `round-robin` when the kernel loads the eBPF "
     "program, else `reuseport`, and `reason` says why",
     {{{"mode", T::kString, false,
        "round-robin, reuseport, source-ip or shared"},
       {"requested", T::kString, false, ""},
       kReason}}},
    {"memory_budget",
     kInfo,
     "the per-worker RSS bound `--max-worker-memory` sets (only when there is "
     "one), at start and when the limits change",
     {{{"bytes", T::kInt, false, ""}}}},
    {"startup_failed", kError,
     "the agent cannot start (exit 1): COMMAND not found or not executable, a "
     "`--listen` or an explicitly given control listener that cannot open; "
     "`msg` says why"},
    {"agent_started",
     kInfo,
     "the loop starts; the workers are spawned next",
     {{{"pid", T::kInt, false, ""},
       {"pid1", T::kBool, false, ""},
       {"workers", T::kInt, false, ""},
       {"listen", T::kString, false, "addresses, comma separated"},
       {"command", T::kString, false, ""}}}},
    // --- a worker's life
    {"worker_spawned",
     kInfo,
     "a worker process started (STARTING)",
     {{kWorker, kGen, kPid}}},
    {"exec_failed",
     kError,
     "a worker could not be started (127: COMMAND not found, 126: any other "
     "reason); counts as a failure, or aborts the roll it was part of",
     {{kWorker, kGen, {"code", T::kInt, false, "126 or 127"}}}},
    {"worker_ready",
     kInfo,
     "a worker became READY",
     {{kWorker,
       kGen,
       kPid,
       {"ready_ms", T::kDouble, false, "spawn to READY"}}}},
    {"worker_status",
     kInfo,
     "a worker sent a new `STATUS=` text",
     {{kWorker, kGen, kPid, {"status", T::kString, false, ""}}}},
    {"worker_stopping",
     kInfo,
     "the stop signal (`--stop-signal`, default SIGTERM) sent to the "
     "worker's group: reload, scale down, drain, shutdown",
     {{kWorker, kGen, kPid, kSignal}}},
    {"worker_killed",
     kWarn,
     "once per process: SIGKILL to its group, or for `watchdog` SIGABRT to the "
     "worker (`worker_escalated` follows if SIGKILL is still needed)",
     {{kWorker,
       kGen,
       kPid,
       {"reason", T::kString, false,
        "`ready_timeout`, `watchdog`, "
        "`stop_timeout`"},
       {"signal", T::kString, true, "`SIGABRT`, for `watchdog`"}}}},
    {"worker_escalated",
     kWarn,
     "a worker the watchdog aborted survived the grace: SIGKILL to its group",
     {{kWorker, kGen, kPid}}},
    {"worker_exited",
     kInfo | kWarn,
     "a worker was reaped; `warn` when the exit was not expected",
     {{kWorker,
       kGen,
       kPid,
       kExitCode,
       kExitSignal,
       {"expected", T::kBool, false,
        "it was being stopped, or said STOPPING=1 and exited 0"}}}},
    {"worker_restart_scheduled",
     kInfo,
     "the slot starts again after the delay (backoff after a failure; "
     "docs/restart-policy.md)",
     {{kWorker,
       {"delay_ms", T::kDouble, false, ""},
       {"cause", T::kString, false,
        "`planned` (STOPPING=1, exit 0), `crash` (never READY or gone within "
        "1 s of READY), `external` (a SIGKILL the agent did not send, or "
        "READY at least 1 s)"},
       {"capacity_kept", T::kBool, true,
        "true when a long backoff was cut to keep enough slots serving"}}}},
    {"gave_up", kError,
     "no worker ever became READY and every slot failed 5 times in a row "
     "(e.g. COMMAND does not exist): the agent shuts down, exit 1"},
    {"orphan_reaped",
     kInfo,
     "an adopted process (not a worker) was reaped",
     {{kPid, kExitCode, kExitSignal}}},
    // --- signals and notify
    {"signal_received",
     kInfo,
     "a signal other than SIGCHLD arrived",
     {{kSignal}}},
    {"signal_forwarded",
     kInfo,
     "a signal the agent does not act on itself (e.g. SIGUSR1) went to every "
     "worker group",
     {{kSignal, {"workers", T::kInt, false, "groups signalled"}}}},
    {"balance_steering",
     kInfo,
     "the steering program was replaced because the set of slots with a "
     "READY worker changed (`--balance=round-robin`, `reuseport` or "
     "`source-ip`); "
     "`slots` "
     "lists the slots new connections now go to",
     {{{"listen", T::kString, false, "the address"},
       {"slots", T::kString, false, "comma separated"},
       {"ready", T::kBool, false,
        "false: no slot is READY, every slot gets connections and they "
        "wait in its queue"}}}},
    {"accept_stalled",
     kWarn,
     "connections waited `--accept-stall` on a listening socket and its "
     "READY worker(s) took none (the queue never shrank): the app likely "
     "does not listen on the inherited fd. Those workers stop counting as "
     "ready (readiness probes, `corralctl status`) until they accept",
     {{{"listen", T::kString, false, "the address"},
       {"workers", T::kString, false, "the READY slots, comma separated"},
       {"waiting", T::kInt, false, "connections in the accept queue"},
       {"stalled_ms", T::kDouble, false, "how long none was taken"},
       {"fd", T::kInt, false, "the fd workers inherit the socket as"}}}},
    {"accept_resumed",
     kInfo,
     "the workers of a stalled socket took connections again: they count as "
     "ready again",
     {{{"listen", T::kString, false, "the address"},
       {"workers", T::kString, false, "comma separated"}}}},
    {"balance_failed", kWarn,
     "a per-slot listening socket could not be opened or the steering "
     "program could not be attached; `msg` names the call and the error"},
    {"balance_slot_closed",
     kInfo,
     "a scaled-away slot's listening socket was closed: its worker is gone "
     "and its accept queue is empty (or net.ipv4.tcp_migrate_req moved it)",
     {{kWorker, {"listen", T::kString, false, "the address"}}}},
    {"signal_failed", kWarn,
     "sending a signal to a worker's process group or a process failed for "
     "a reason other than the process being gone already (ESRCH is normal "
     "and not reported); `msg` names the call and the error"},
    {"notify_rejected",
     kWarn,
     "notify datagrams were dropped: sender outside the agent's pid "
     "namespace, not a worker or its descendant, over 4096 bytes, or "
     "malformed. At most one line per sender per second: the first "
     "datagram at once, the rest counted and reported when the second is "
     "over (`reason` is the first one's)",
     {{{"pid", T::kInt, false,
        "-1: senders past the 256th in one second, counted together"},
       kReason,
       {"count", T::kInt, false, "datagrams this line reports"},
       {"window_ms", T::kDouble, false,
        "the time they came in; 0 for the first, reported at once"}}}},
    // --- rolls
    {"reload_refused", kWarn,
     "SIGHUP ignored: a roll is already in progress, the workers are "
     "drained, or the agent is shutting down; `msg` says which"},
    {"reload_started", kInfo,
     "a rolling reload of every worker began (SIGHUP or `Reload`); a "
     "one-worker roll (`restart`, `memory`) starts without it"},
    {"reload_slot_done",
     kInfo,
     "a replacement became READY and took over its slot; the old worker is "
     "stopping",
     {{kWorker,
       {"old_pid", T::kInt, false, ""},
       {"new_pid", T::kInt, false, ""},
       {"reason", T::kString, false, "`reload`, `restart`, `memory`"}}}},
    {"reload_finished",
     kInfo,
     "every replacement is READY (old workers may still be draining)",
     {{{"reason", T::kString, false, "`reload`, `restart`, `memory`"}}}},
    {"reload_aborted",
     kError,
     "a roll stopped (a replacement failed, a drain or shutdown began, its "
     "worker was scaled away); the old worker keeps serving",
     {{kWorker, kReason}}},
    // --- scaling and memory
    {"scaled", kInfo, "the target worker count changed", {{kFrom, kTo}}},
    {"rescale",
     kInfo,
     "auto mode: the CPU limit changed and the new count held for two reads; "
     "`scaled` follows",
     {{kFrom, kTo}}},
    {"rescale_refused", kWarn,
     "the supervisor refused an automatic rescale; `msg` says why"},
    {"memory_replace",
     kWarn,
     "a READY worker's RSS stayed over the bound for 2 samples (a second "
     "apart): it is replaced by a roll with reason `memory`",
     {{kWorker,
       kPid,
       {"rss_bytes", T::kInt, false, ""},
       {"bound_bytes", T::kInt, false, ""}}}},
    {"memory_replace_refused",
     kWarn,
     "the memory replacement could not start (e.g. another roll is in "
     "progress); retried every second, reported once",
     {{kWorker}}},
    // --- drain and shutdown
    {"drain_started", kInfo,
     "not ready; workers get SIGTERM after `--drain-delay`"},
    {"drain_finished", kInfo, "every worker stopped; the agent stays up"},
    {"resumed", kInfo, "workers start again after a drain"},
    {"shutdown_started",
     kInfo,
     "SIGTERM or SIGINT (or the `Shutdown` RPC, as SIGTERM): not ready, then "
     "drain",
     {{kSignal}}},
    {"shutdown_hurried", kWarn,
     "a second SIGTERM or SIGINT: the drain delay "
     "(or the stop timeout) is cut short"},
    {"drain_delay_skipped", kInfo,
     "`Shutdown` with `quick` (`corralctl stop --now`) during the drain "
     "delay: workers get SIGTERM now; the stop timeout still applies"},
    {"strays_killed",
     kWarn,
     "at shutdown's SIGKILL step, descendants outside the worker groups were "
     "killed too",
     {{kCount}}},
    {"reap_timeout", kError,
     "descendants were still not reaped 5 s after SIGKILL; the agent exits "
     "anyway (exit 1)"},
    {"shutdown_finished",
     kInfo,
     "always the last agent event",
     {{{"exit_code", T::kInt, false, ""},
       {"killed", T::kBool, false, "something needed SIGKILL"}}}},
    // --- control plane and logging
    {"control_listening",
     kInfo,
     "where the control plane listens; a field per listener that is open",
     {{{"socket", T::kString, true, ""},
       {"probe_port", T::kInt, true, ""},
       {"http_port", T::kInt, true, ""},
       {"tls_port", T::kInt, true, ""}}}},
    {"control_socket_unavailable",
     kWarn,
     "the *default* control socket could not be created (e.g. read-only "
     "`/run`): the agent runs on without it",
     {{{"socket", T::kString, false, ""}}}},
    {"log_lines_dropped",
     kWarn,
     "stdout could not keep up; lines were dropped since the last report",
     {{kCount}}},
    {"event_invalid",
     kError,
     "an event did not match this table (a bug in the agent; the event is "
     "still logged); reported once per event name",
     {{{"name", T::kString, false, ""}, {"problem", T::kString, false, ""}}}},
};

bool HoldsType(const FieldValue& value, FieldType type) {
  switch (type) {
    case FieldType::kInt:
      return std::holds_alternative<int64_t>(value);
    case FieldType::kDouble:
      return std::holds_alternative<double>(value);
    case FieldType::kBool:
      return std::holds_alternative<bool>(value);
    case FieldType::kString:
      return std::holds_alternative<std::string>(value);
  }
  return false;
}

FieldType TypeOf(const FieldValue& value) {
  constexpr FieldType kByIndex[] = {FieldType::kInt, FieldType::kDouble,
                                    FieldType::kBool, FieldType::kString};
  return kByIndex[value.index()];
}

}  // namespace

std::span<const FieldSpec> EventSpec::Fields() const {
  size_t n = 0;
  while (n < fields.size() && !fields[n].name.empty()) ++n;
  return {fields.data(), n};
}

const FieldSpec* EventSpec::FindField(std::string_view field) const {
  for (const FieldSpec& f : Fields()) {
    if (f.name == field) return &f;
  }
  return nullptr;
}

std::span<const EventSpec> EventRegistry() { return kEvents; }

const EventSpec* FindEventSpec(std::string_view name) {
  for (const EventSpec& spec : kEvents) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::string_view FieldTypeName(FieldType type) {
  switch (type) {
    case FieldType::kInt:
      return "int";
    case FieldType::kDouble:
      return "double";
    case FieldType::kBool:
      return "bool";
    case FieldType::kString:
      return "string";
  }
  return "string";
}

std::string_view EventLevelName(Level level) {
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

absl::Status CheckEvent(const Event& event) {
  const EventSpec* spec = FindEventSpec(event.name);
  auto fail = [&event](std::string_view problem) {
    return absl::InvalidArgumentError(
        absl::StrCat("event '", event.name, "': ", Sv(problem)));
  };
  if (spec == nullptr) {
    return fail("not in the registry (agent/supervisor/event_registry.cc)");
  }
  if ((spec->levels & LevelBit(event.level)) == 0) {
    return fail(absl::StrCat("level ", Sv(EventLevelName(event.level)),
                             " is not declared for it"));
  }
  if (event.msg.empty()) return fail("empty msg");
  for (size_t i = 0; i < event.fields.size(); ++i) {
    const auto& [key, value] = event.fields[i];
    const FieldSpec* field = spec->FindField(key);
    if (field == nullptr) {
      return fail(absl::StrCat("field '", key, "' is not declared"));
    }
    if (!HoldsType(value, field->type)) {
      return fail(absl::StrFormat("field '%s' is %s, declared %s", key,
                                  Sv(FieldTypeName(TypeOf(value))),
                                  Sv(FieldTypeName(field->type))));
    }
    for (size_t j = 0; j < i; ++j) {
      if (event.fields[j].first == key) {
        return fail(absl::StrCat("field '", key, "' appears twice"));
      }
    }
  }
  for (const FieldSpec& field : spec->Fields()) {
    if (!field.optional && event.Find(field.name) == nullptr) {
      return fail(
          absl::StrCat("required field '", Sv(field.name), "' missing"));
    }
  }
  return absl::OkStatus();
}

}  // namespace corral::agent
