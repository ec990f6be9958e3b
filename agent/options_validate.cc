// The validation half of agent/options.h: the raw flag values (as CLI11
// collected them, options.cc) checked and turned into Options, with errors
// that name the flag or its environment variable and the value.
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "agent/options.h"
#include "agent/options_internal.h"
#include "agent/os/node_register.h"
#include "agent/supervisor/size_parse.h"
#include "common/duration.h"
#include "common/signals.h"

namespace corral::agent {
namespace {

using options_internal::EnvName;
using options_internal::RawFlags;

// "invalid --flag value 'v': <why>", naming the environment variable
// instead when the value came from it.
absl::Status Invalid(absl::string_view flag, absl::string_view value,
                     absl::string_view why) {
  const std::string env = EnvName(flag);
  const char* from_env = getenv(env.c_str());
  const std::string source = from_env != nullptr && from_env == value
                                 ? absl::StrCat(env, " (", flag, ")")
                                 : std::string(flag);
  return absl::InvalidArgumentError(
      absl::StrCat("invalid ", source, " value '", value, "': ", why));
}

absl::Status BadValue(absl::string_view flag, absl::string_view value,
                      absl::string_view expected) {
  return Invalid(flag, value, absl::StrCat("expected ", expected));
}

absl::StatusOr<std::optional<int>> ParseWorkers(const std::string& text) {
  if (text == "auto") return std::optional<int>();
  int n = 0;
  if (!absl::SimpleAtoi(text, &n) || n < 1 || n > 4096) {
    return BadValue("--workers", text, "auto or a number from 1 to 4096");
  }
  return std::optional<int>(n);
}

absl::Status ParseReady(const std::string& text, Options& out) {
  if (text == "notify") {
    out.ready = ReadyMode::kNotify;
    return absl::OkStatus();
  }
  if (text == "ipc") {
    out.ready = ReadyMode::kIpc;
    return absl::OkStatus();
  }
  absl::string_view rest = text;
  if (absl::ConsumePrefix(&rest, "delay:")) {
    absl::StatusOr<Duration> d =
        ParseDurationFlag("--ready", std::string(rest));
    if (!d.ok()) return d.status();
    out.ready = ReadyMode::kDelay;
    out.ready_delay = *d;
    return absl::OkStatus();
  }
  return BadValue("--ready", text,
                  "notify, ipc or delay:DURATION (e.g. delay:2s)");
}

absl::Status ParseBackoff(const std::string& text, BackoffOptions& out) {
  std::vector<std::string> parts = absl::StrSplit(text, ',');
  if (parts.size() != 2) {
    return BadValue("--restart-backoff", text, "MIN,MAX (e.g. 100ms,30s)");
  }
  absl::StatusOr<Duration> lo =
      ParseDurationFlag("--restart-backoff", parts[0]);
  if (!lo.ok()) return lo.status();
  absl::StatusOr<Duration> hi =
      ParseDurationFlag("--restart-backoff", parts[1]);
  if (!hi.ok()) return hi.status();
  if (*lo <= Duration::zero() || *hi < *lo) {
    return BadValue("--restart-backoff", text, "0 < MIN <= MAX");
  }
  out.min = *lo;
  out.max = *hi;
  return absl::OkStatus();
}

// "auto", "none" (or 0, its old spelling) or a count.
absl::StatusOr<int> ParseMaxWorkers(const std::string& text) {
  if (text == "auto") return kMaxWorkersAuto;
  if (text == "none") return kMaxWorkersNone;
  int n = 0;
  if (!absl::SimpleAtoi(text, &n) || n < 0 || n > kMaxScaleWorkers) {
    return BadValue("--max-workers", text,
                    absl::StrCat("auto (a ceiling of ", kScaleCeilingPerCpu,
                                 " per usable CPU), none, or a count from 1 "
                                 "to ",
                                 kMaxScaleWorkers));
  }
  return n;
}

// A signal that ends a process by default: --stop-signal=SIGINT, INT, 2.
absl::StatusOr<int> ParseStopSignal(const std::string& text) {
  const int sig = common::ParseSignal(text);
  if (sig <= 0) {
    return BadValue("--stop-signal", text,
                    "a signal name or number, e.g. SIGTERM, INT or 2");
  }
  for (int keeps : {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT, SIGCHLD,
                    SIGWINCH, SIGURG}) {
    if (sig == keeps) {
      return Invalid("--stop-signal", text,
                     absl::StrCat(common::SignalName(sig),
                                  " does not end a process; use SIGTERM, "
                                  "SIGINT, SIGQUIT, ..."));
    }
  }
  return sig;
}

absl::StatusOr<int> ParsePort(absl::string_view flag, const std::string& text) {
  if (text == "auto") return kAutoPort;
  int port = 0;
  if (!absl::SimpleAtoi(text, &port) || port < 0 || port > 65535) {
    return BadValue(flag, text,
                    "a port from 0 (off) to 65535, or auto (any free port)");
  }
  return port;
}

absl::Status ValidateControl(const RawFlags& raw, Options& o) {
  absl::StatusOr<int> probe_port = ParsePort("--probe-port", raw.probe_port);
  if (!probe_port.ok()) return probe_port.status();
  absl::StatusOr<int> http_port = ParsePort("--http-port", raw.http_port);
  if (!http_port.ok()) return http_port.status();
  if (raw.min_ready < 0) {
    return BadValue("--min-ready", absl::StrCat(raw.min_ready), "a count >= 0");
  }
  o.control_socket = raw.control_socket;
  o.probe_port = *probe_port;
  o.http_port = *http_port;
  o.probe_address = raw.probe_address;
  o.min_ready = raw.min_ready;
  const int tls_set =
      !raw.control_tls_listen.empty() + !raw.control_tls_cert.empty() +
      !raw.control_tls_key.empty() + !raw.control_tls_client_ca.empty();
  if (tls_set != 0 && tls_set != 4) {
    return absl::InvalidArgumentError(
        "remote control needs all of --control-tls-listen, "
        "--control-tls-cert, --control-tls-key and --control-tls-client-ca "
        "(mutual TLS only)");
  }
  o.control_tls_listen = raw.control_tls_listen;
  o.control_tls_cert = raw.control_tls_cert;
  o.control_tls_key = raw.control_tls_key;
  o.control_tls_client_ca = raw.control_tls_client_ca;
  return absl::OkStatus();
}

// After --ready: the register module says READY on Node's IPC channel.
absl::Status ValidateNodeRegister(const std::string& value, Options& o) {
  if (value == "off" || value.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> module = ResolveNodeRegister(value);
  if (!module.ok()) return module.status();
  if (o.ready != ReadyMode::kIpc) {
    return Invalid("--node-register", value,
                   "it needs --ready=ipc (the register module says READY on "
                   "Node's IPC channel)");
  }
  o.node_register = *module;
  return absl::OkStatus();
}

}  // namespace

namespace options_internal {

absl::StatusOr<Options> Validate(const RawFlags& raw,
                                 std::vector<std::string> command) {
  Options o;
  absl::StatusOr<std::optional<int>> workers = ParseWorkers(raw.workers);
  if (!workers.ok()) return workers.status();
  o.workers = *workers;
  for (size_t i = 0; i < raw.listen.size(); ++i) {
    std::string name = i == 0 ? "listen" : absl::StrCat("listen", i);
    absl::StatusOr<ListenSpec> spec = ParseListenSpec(raw.listen[i], name);
    if (!spec.ok()) return spec.status();
    o.listen.push_back(*spec);
  }
  std::optional<BalanceMode> balance = ParseBalanceMode(raw.balance);
  if (!balance) {
    return BadValue("--balance", raw.balance,
                    "auto, round-robin, reuseport, source-ip or shared");
  }
  o.balance = *balance;
  if (absl::Status s = ParseReady(raw.ready, o); !s.ok()) return s;
  struct {
    const char* flag;
    const std::string& text;
    Duration* out;
  } durations[] = {
      {"--ready-timeout", raw.ready_timeout, &o.ready_timeout},
      {"--stop-timeout", raw.stop_timeout, &o.stop_timeout},
      {"--drain-delay", raw.drain_delay, &o.drain_delay},
      {"--watchdog", raw.watchdog, &o.watchdog},
      {"--accept-stall", raw.accept_stall, &o.accept_stall},
  };
  for (const auto& d : durations) {
    absl::StatusOr<Duration> v = ParseDurationFlag(d.flag, d.text);
    if (!v.ok()) return v.status();
    *d.out = *v;
  }
  absl::StatusOr<int> stop_signal = ParseStopSignal(raw.stop_signal);
  if (!stop_signal.ok()) return stop_signal.status();
  o.stop_signal = *stop_signal;
  if (o.ready_timeout <= Duration::zero()) {
    return BadValue("--ready-timeout", raw.ready_timeout, "a duration > 0");
  }
  if (absl::Status s = ParseBackoff(raw.restart_backoff, o.backoff); !s.ok()) {
    return s;
  }
  absl::StatusOr<CpuRounding> rounding = ParseCpuRounding(raw.cpu_rounding);
  if (!rounding.ok()) return rounding.status();
  o.sizing.rounding = *rounding;
  o.sizing.min_workers = raw.min_workers;
  absl::StatusOr<int> max_workers = ParseMaxWorkers(raw.max_workers);
  if (!max_workers.ok()) return max_workers.status();
  o.sizing.max_workers = *max_workers;
  if (absl::Status s = ValidateSizingPolicy(o.sizing); !s.ok()) return s;
  if (o.workers && o.sizing.max_workers > 0 &&
      *o.workers > o.sizing.max_workers) {
    return BadValue(
        "--workers", raw.workers,
        absl::StrCat("at most --max-workers=", o.sizing.max_workers));
  }
  absl::StatusOr<WorkerMemoryBound> memory =
      ParseMaxWorkerMemory(raw.max_worker_memory);
  if (!memory.ok()) return memory.status();
  o.max_worker_memory = *memory;
  if (absl::Status s = ValidateControl(raw, o); !s.ok()) return s;
  if (absl::Status s = ValidateNodeRegister(raw.node_register, o); !s.ok()) {
    return s;
  }
  if (raw.log_format == "text") {
    o.log_format = LogFormat::kText;
  } else if (raw.log_format == "json") {
    o.log_format = LogFormat::kJson;
  } else {
    return BadValue("--log-format", raw.log_format, "text or json");
  }
  if (command.empty()) {
    return absl::InvalidArgumentError(
        "missing COMMAND: usage: corral-agent [flags] -- COMMAND [ARGS...]");
  }
  o.command = std::move(command);
  return o;
}

}  // namespace options_internal

absl::StatusOr<Duration> ParseDurationFlag(const std::string& flag,
                                           const std::string& text) {
  absl::StatusOr<absl::Duration> d = common::ParseDuration(text);
  if (!d.ok()) return Invalid(flag, text, d.status().message());
  // Deadlines are steady_clock now + value: a larger value (2562047h and
  // up saturate to the largest Duration) would wrap to the past and, say,
  // SIGKILL a stopping worker at once.
  if (*d > absl::FromChrono(kMaxFlagDuration)) {
    return Invalid(flag, text,
                   absl::StrCat("at most ",
                                common::DurationToString(
                                    absl::FromChrono(kMaxFlagDuration)),
                                " (one year)"));
  }
  return absl::ToChronoNanoseconds(*d);
}

std::string FormatDurationFlag(Duration d) {
  return common::DurationToString(absl::FromChrono(d));
}

}  // namespace corral::agent
