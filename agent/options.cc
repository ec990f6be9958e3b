#include "agent/options.h"

#include <CLI/CLI.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "agent/supervisor/size_parse.h"

namespace corral::agent {
namespace {

// "--stop-timeout" -> "CORRAL_STOP_TIMEOUT".
std::string EnvName(absl::string_view flag) {
  std::string env = "CORRAL_";
  for (char c : flag.substr(flag.find_first_not_of('-'))) {
    env.push_back(c == '-' ? '_' : static_cast<char>(toupper(c)));
  }
  return env;
}

// Names the flag, or the environment variable when the value came from it.
absl::Status BadValue(absl::string_view flag, absl::string_view value,
                      absl::string_view expected) {
  const std::string env = EnvName(flag);
  const char* from_env = getenv(env.c_str());
  const std::string source = from_env != nullptr && from_env == value
                                 ? absl::StrCat(env, " (", flag, ")")
                                 : std::string(flag);
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid ", source, " value '", value, "': expected ", expected));
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

// Raw flag values as CLI11 collects them (flag, else environment).
struct RawFlags {
  std::string workers = "auto";
  std::vector<std::string> listen;
  std::string ready = "notify";
  std::string ready_timeout = "60s";
  std::string stop_timeout = "20s";
  std::string drain_delay = "5s";
  std::string watchdog = "0";
  std::string restart_backoff = "100ms,30s";
  std::string log_format = "text";
  std::string cpu_rounding = "ceil";
  int min_workers = 1;
  int max_workers = 0;
  std::string max_worker_memory = "off";
  std::string control_socket = "/run/corral/agent.sock";
  std::string probe_port = "0";
  std::string http_port = "0";
  std::string probe_address = "0.0.0.0";
  int min_ready = 1;
  std::string control_tls_listen;
  std::string control_tls_cert;
  std::string control_tls_key;
  std::string control_tls_client_ca;
};

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
  };
  for (const auto& d : durations) {
    absl::StatusOr<Duration> v = ParseDurationFlag(d.flag, d.text);
    if (!v.ok()) return v.status();
    *d.out = *v;
  }
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
  o.sizing.max_workers = raw.max_workers;
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

}  // namespace

absl::StatusOr<Duration> ParseDurationFlag(const std::string& flag,
                                           const std::string& text) {
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds)) {
    if (seconds < 0) return BadValue(flag, text, "a duration >= 0");
    return std::chrono::duration_cast<Duration>(
        std::chrono::duration<double>(seconds));
  }
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return BadValue(flag, text, "a duration such as 500ms, 5s or 1m");
  }
  return absl::ToChronoNanoseconds(d);
}

ParsedCommandLine ParseCommandLine(int argc, const char* const* argv) {
  CLI::App app{
      "corral-agent: runs COMMAND as a pool of workers, one per usable CPU, "
      "as PID 1 of a container.",
      "corral-agent"};
  app.prefix_command();
  RawFlags raw;
  app.add_option("--workers", raw.workers, "auto or N (default auto)")
      ->envname("CORRAL_WORKERS");
  app.add_option("--listen", raw.listen,
                 "[NAME=]tcp://HOST:PORT or [NAME=]unix:PATH; repeatable")
      ->envname("CORRAL_LISTEN")
      ->delimiter(',');
  app.add_option("--ready", raw.ready, "notify, ipc or delay:DURATION")
      ->envname("CORRAL_READY");
  app.add_option("--ready-timeout", raw.ready_timeout,
                 "STARTING longer than this is a failure (default 60s)")
      ->envname("CORRAL_READY_TIMEOUT");
  app.add_option("--stop-timeout", raw.stop_timeout,
                 "SIGTERM to SIGKILL (default 20s)")
      ->envname("CORRAL_STOP_TIMEOUT");
  app.add_option("--drain-delay", raw.drain_delay,
                 "not-ready before SIGTERM on shutdown (default 5s)")
      ->envname("CORRAL_DRAIN_DELAY");
  app.add_option("--watchdog", raw.watchdog,
                 "a READY worker silent longer is hung (default 0 = off)")
      ->envname("CORRAL_WATCHDOG");
  app.add_option("--restart-backoff", raw.restart_backoff,
                 "MIN,MAX restart delays (default 100ms,30s)")
      ->envname("CORRAL_RESTART_BACKOFF");
  app.add_option("--log-format", raw.log_format, "text or json (default text)")
      ->envname("CORRAL_LOG_FORMAT");
  app.add_option("--cpu-rounding", raw.cpu_rounding,
                 "ceil or floor a fractional CPU limit (default ceil)")
      ->envname("CORRAL_CPU_ROUNDING");
  app.add_option("--min-workers", raw.min_workers,
                 "auto never goes below this (default 1)")
      ->envname("CORRAL_MIN_WORKERS");
  app.add_option("--max-workers", raw.max_workers,
                 "auto and scale never go above this (default 0 = none)")
      ->envname("CORRAL_MAX_WORKERS");
  app.add_option("--max-worker-memory", raw.max_worker_memory,
                 "SIZE (512Mi, 1G), auto or off (default off): replace a "
                 "worker whose RSS stays above it")
      ->envname("CORRAL_MAX_WORKER_MEMORY");
  app.add_option("--control-socket", raw.control_socket,
                 "unix socket of the Agent service, mode 0600 (default "
                 "/run/corral/agent.sock; empty = none)")
      ->envname("CORRAL_CONTROL_SOCKET");
  app.add_option("--probe-port", raw.probe_port,
                 "TCP port for grpc.health.v1 probes, or auto = any free "
                 "port (default 0 = off)")
      ->envname("CORRAL_PROBE_PORT");
  app.add_option("--http-port", raw.http_port,
                 "TCP port for /livez /readyz /metrics, or auto = any free "
                 "port (default 0 = off)")
      ->envname("CORRAL_HTTP_PORT");
  app.add_option("--probe-address", raw.probe_address,
                 "address the probe and HTTP ports bind (default 0.0.0.0)")
      ->envname("CORRAL_PROBE_ADDRESS");
  app.add_option("--min-ready", raw.min_ready,
                 "readiness needs this many READY workers (default 1)")
      ->envname("CORRAL_MIN_READY");
  app.add_option("--control-tls-listen", raw.control_tls_listen,
                 "HOST:PORT for remote control over mutual TLS (default off)")
      ->envname("CORRAL_CONTROL_TLS_LISTEN");
  app.add_option("--control-tls-cert", raw.control_tls_cert,
                 "server certificate (PEM)")
      ->envname("CORRAL_CONTROL_TLS_CERT");
  app.add_option("--control-tls-key", raw.control_tls_key,
                 "server private key (PEM)")
      ->envname("CORRAL_CONTROL_TLS_KEY");
  app.add_option("--control-tls-client-ca", raw.control_tls_client_ca,
                 "CA that client certificates must chain to (PEM)")
      ->envname("CORRAL_CONTROL_TLS_CLIENT_CA");

  // CLI11 2.1 reads "--flag=" (an empty value) as "--flag" and takes the
  // next argument as the value: pass the empty value explicitly instead.
  // Only our flags, before "--", are rewritten; COMMAND's are left alone.
  int end = argc;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") {
      end = i;
      break;
    }
  }
  std::vector<std::string> args;  // CLI11 wants them in reverse order
  for (int i = argc - 1; i >= 1; --i) {
    std::string a = argv[i];
    if (i < end && a.starts_with("--") && a.size() > 3 && a.back() == '=' &&
        a.find('=') == a.size() - 1) {
      args.push_back("");
      a.pop_back();
    }
    args.push_back(std::move(a));
  }
  ParsedCommandLine result;
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    result.message = app.help();
    return result;
  } catch (const CLI::ParseError& e) {
    result.exit_code = 2;
    result.message =
        absl::StrCat("corral-agent: ", e.what(), " (see corral-agent --help)");
    return result;
  }
  std::vector<std::string> command = app.remaining();
  if (!command.empty() && command.front() == "--") {
    command.erase(command.begin());
  } else if (!command.empty() && command.front().starts_with("-")) {
    // prefix_command() stops at the first argument it does not know; a
    // dash there is a mistyped flag, not a command.
    result.exit_code = 2;
    result.message =
        absl::StrCat("corral-agent: unknown flag '", command.front(),
                     "' (see corral-agent --help)");
    return result;
  }
  absl::StatusOr<Options> options = Validate(raw, std::move(command));
  if (!options.ok()) {
    result.exit_code = 2;
    result.message = absl::StrCat("corral-agent: ", options.status().message());
    return result;
  }
  result.options = std::move(*options);
  return result;
}

}  // namespace corral::agent
