// The flag table of agent/options.h: every flag's CLI11 definition, its
// environment variable and help text, the defaults written as flags, and
// ParseCommandLine. What the values mean and which are refused is
// options_validate.cc.
#include "agent/options.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/options_internal.h"
#include "agent/supervisor/size_parse.h"
#include "common/cli_message.h"
#include "common/signals.h"

namespace corral::agent {
namespace options_internal {

// "--stop-timeout" -> "CORRAL_STOP_TIMEOUT".
std::string EnvName(absl::string_view flag) {
  std::string env = "CORRAL_";
  for (char c : flag.substr(flag.find_first_not_of('-'))) {
    env.push_back(c == '-' ? '_' : static_cast<char>(toupper(c)));
  }
  return env;
}

}  // namespace options_internal

namespace {

using options_internal::EnvName;
using options_internal::RawFlags;
using options_internal::Validate;

// A fixed bound as ParseSize reads it back exactly ("512Mi", else bytes).
std::string FormatBound(const WorkerMemoryBound& bound) {
  switch (bound.mode) {
    case WorkerMemoryBound::Mode::kOff:
      return "off";
    case WorkerMemoryBound::Mode::kAuto:
      return "auto";
    case WorkerMemoryBound::Mode::kFixed:
      break;
  }
  const std::string size = FormatSize(bound.bytes);
  return absl::StrContains(size, '.') ? absl::StrCat(bound.bytes) : size;
}

// --max-workers as ParseMaxWorkers reads it back.
std::string FormatMaxWorkers(int max) {
  if (max == kMaxWorkersAuto) return "auto";
  if (max == kMaxWorkersNone) return "none";
  return absl::StrCat(max);
}

// A port flag as ParsePort reads it back: a number, or "auto".
std::string FormatPort(int port) {
  return port == kAutoPort ? "auto" : absl::StrCat(port);
}

// "NAME=tcp://HOST:PORT" or "NAME=unix:PATH", as ParseListenSpec reads it.
std::string FormatListen(const ListenSpec& l) {
  if (l.is_unix) return absl::StrCat(l.name, "=unix:", l.path);
  const bool v6 = absl::StrContains(l.host, ':');
  return absl::StrCat(l.name, "=tcp://", v6 ? "[" : "", l.host, v6 ? "]" : "",
                      ":", l.port);
}

std::string FormatReady(const Options& o) {
  switch (o.ready) {
    case ReadyMode::kNotify:
      return "notify";
    case ReadyMode::kIpc:
      return "ipc";
    case ReadyMode::kDelay:
      break;
  }
  return absl::StrCat("delay:", FormatDurationFlag(o.ready_delay));
}

// The flags' starting values: `d` written as a user would type it, so that
// parsing them gives `d` back (a test holds it to that).
RawFlags RawDefaults(const Options& d) {
  RawFlags raw;
  raw.workers = d.workers ? absl::StrCat(*d.workers) : "auto";
  for (const ListenSpec& l : d.listen) raw.listen.push_back(FormatListen(l));
  raw.balance = std::string(BalanceModeName(d.balance));
  raw.ready = FormatReady(d);
  raw.ready_timeout = FormatDurationFlag(d.ready_timeout);
  raw.stop_timeout = FormatDurationFlag(d.stop_timeout);
  raw.drain_delay = FormatDurationFlag(d.drain_delay);
  raw.watchdog = FormatDurationFlag(d.watchdog);
  raw.stop_signal = common::SignalName(d.stop_signal);
  raw.accept_stall = FormatDurationFlag(d.accept_stall);
  raw.restart_backoff = absl::StrCat(FormatDurationFlag(d.backoff.min), ",",
                                     FormatDurationFlag(d.backoff.max));
  raw.log_format = d.log_format == LogFormat::kJson ? "json" : "text";
  raw.cpu_rounding = std::string(CpuRoundingName(d.sizing.rounding));
  raw.min_workers = d.sizing.min_workers;
  raw.max_workers = FormatMaxWorkers(d.sizing.max_workers);
  raw.max_worker_memory = FormatBound(d.max_worker_memory);
  raw.control_socket = d.control_socket;
  raw.probe_port = FormatPort(d.probe_port);
  raw.http_port = FormatPort(d.http_port);
  raw.probe_address = d.probe_address;
  raw.min_ready = d.min_ready;
  raw.control_tls_listen = d.control_tls_listen;
  raw.control_tls_cert = d.control_tls_cert;
  raw.control_tls_key = d.control_tls_key;
  raw.control_tls_client_ca = d.control_tls_client_ca;
  raw.node_register = d.node_register.empty() ? "off" : d.node_register;
  return raw;
}

// " (default X)"; `zero` names what a default of 0 or "" means ("off").
std::string Default(const std::string& value, const char* zero = nullptr) {
  if (zero != nullptr && (value == "0" || value.empty())) {
    return absl::StrCat(" (default ", value.empty() ? "" : "0 = ", zero, ")");
  }
  return absl::StrCat(" (default ", value, ")");
}

std::string Default(int value, const char* zero = nullptr) {
  return Default(absl::StrCat(value), zero);
}

// Registers every flag on `app`, bound to `raw`, whose values at this point
// are the defaults the help text prints.
void AddFlags(CLI::App& app, RawFlags& raw) {
  auto add = [&app](const char* flag, auto& value, const std::string& help) {
    return app.add_option(flag, value, help)->envname(EnvName(flag));
  };
  add("--workers", raw.workers, "auto or N" + Default(raw.workers));
  add("--listen", raw.listen,
      "[NAME=]tcp://HOST:PORT or [NAME=]unix:PATH; repeatable" +
          Default(absl::StrJoin(raw.listen, ","), "none"))
      ->delimiter(',');
  add("--balance", raw.balance,
      "auto, round-robin, reuseport, source-ip or shared: how tcp "
      "connections are spread (auto: round-robin when eBPF loads, else "
      "reuseport)" +
          Default(raw.balance));
  add("--ready", raw.ready,
      "notify, ipc or delay:DURATION" + Default(raw.ready));
  add("--ready-timeout", raw.ready_timeout,
      "STARTING longer than this is a failure" + Default(raw.ready_timeout));
  add("--stop-signal", raw.stop_signal,
      "graceful stop signal for reload, drain, scale down and shutdown "
      "(SIGKILL follows after --stop-timeout)" +
          Default(raw.stop_signal));
  add("--stop-timeout", raw.stop_timeout,
      "stop signal to SIGKILL" + Default(raw.stop_timeout));
  add("--drain-delay", raw.drain_delay,
      "not-ready before SIGTERM on shutdown" + Default(raw.drain_delay));
  add("--watchdog", raw.watchdog,
      "a READY worker silent longer is hung" + Default(raw.watchdog, "off"));
  add("--accept-stall", raw.accept_stall,
      "connections waiting this long untaken make a READY worker not ready" +
          Default(raw.accept_stall, "off"));
  add("--restart-backoff", raw.restart_backoff,
      "MIN,MAX restart delays" + Default(raw.restart_backoff));
  add("--log-format", raw.log_format, "text or json" + Default(raw.log_format));
  add("--cpu-rounding", raw.cpu_rounding,
      "ceil or floor a fractional CPU limit" + Default(raw.cpu_rounding));
  add("--min-workers", raw.min_workers,
      "auto never goes below this" + Default(raw.min_workers));
  add("--max-workers", raw.max_workers,
      "N, auto or none: auto and scale never go above N; auto = a ceiling "
      "for scale of 4 per usable CPU (at least 8)" +
          Default(raw.max_workers));
  add("--max-worker-memory", raw.max_worker_memory,
      "SIZE (512Mi, 1G), auto or off" + Default(raw.max_worker_memory) +
          ": replace a worker whose RSS stays above it");
  add("--control-socket", raw.control_socket,
      "unix socket of the Agent service, mode 0600; empty = none" +
          Default(raw.control_socket, "none"));
  add("--probe-port", raw.probe_port,
      "TCP port for grpc.health.v1 probes, or auto = any free port" +
          Default(raw.probe_port, "off"));
  add("--http-port", raw.http_port,
      "TCP port for /livez /readyz /metrics, or auto = any free port" +
          Default(raw.http_port, "off"));
  add("--probe-address", raw.probe_address,
      "address the probe and HTTP ports bind" + Default(raw.probe_address));
  add("--min-ready", raw.min_ready,
      "readiness needs this many READY workers" + Default(raw.min_ready));
  add("--control-tls-listen", raw.control_tls_listen,
      "HOST:PORT for remote control over mutual TLS" +
          Default(raw.control_tls_listen, "off"));
  add("--control-tls-cert", raw.control_tls_cert, "server certificate (PEM)");
  add("--control-tls-key", raw.control_tls_key, "server private key (PEM)");
  add("--control-tls-client-ca", raw.control_tls_client_ca,
      "CA that client certificates must chain to (PEM)");
  // A flag with an optional value: bare = auto.
  app.add_flag("--node-register{auto}", raw.node_register,
               "add `--require` of @corral/node's register.js to NODE_OPTIONS "
               "(unmodified Node apps); auto = the copy installed beside the "
               "agent, else @corral/node/register from the app's "
               "node_modules; or a PATH; needs --ready=ipc" +
                   Default(raw.node_register))
      ->envname(EnvName("--node-register"));
}

// A flag value that names a program ("--workers node app.js") is most
// likely COMMAND given without the `--` before it: say so.
std::string MissingDashDashHint(const std::string& value) {
  if (value.empty() || value.starts_with("-")) return "";
  bool command = false;
  if (absl::StrContains(value, '/')) {
    command = ::access(value.c_str(), X_OK) == 0;
  } else if (const char* path = std::getenv("PATH"); path != nullptr) {
    for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
      if (::access(absl::StrCat(dir, "/", value).c_str(), X_OK) == 0) {
        command = true;
        break;
      }
    }
  }
  if (!command) return "";
  return absl::StrCat("; '", value,
                      "' is a program: missing `--` before COMMAND? "
                      "(corral-agent [FLAGS] -- COMMAND [ARGS...])");
}

constexpr char kDescription[] =
    "corral-agent: runs COMMAND as a pool of workers, one per usable CPU, as "
    "PID 1 of a container.";

}  // namespace

std::string HelpText(const Options& defaults) {
  CLI::App app{kDescription, "corral-agent"};
  app.prefix_command();
  app.set_version_flag("--version", "corral-agent " CORRAL_VERSION);
  RawFlags raw = RawDefaults(defaults);
  AddFlags(app, raw);
  return app.help();
}

ParsedCommandLine ParseCommandLine(int argc, const char* const* argv) {
  CLI::App app{kDescription, "corral-agent"};
  app.prefix_command();
  app.set_version_flag("--version", "corral-agent " CORRAL_VERSION);
  RawFlags raw = RawDefaults(Options{});
  AddFlags(app, raw);

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
    if (i < end && a == "--node-register=") {
      a = "--node-register=off";  // a flag takes no separate value
    } else if (i < end && a.starts_with("--") && a.size() > 3 &&
               a.back() == '=' && a.find('=') == a.size() - 1) {
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
  } catch (const CLI::CallForVersion& e) {
    result.message = e.what();
    return result;
  } catch (const CLI::ParseError& e) {
    result.exit_code = 2;
    result.message =
        absl::StrCat("corral-agent: ", ReadableCliError(e.what()),
                     MissingDashDashHint(RefusedCliValue(e.what())),
                     " (see corral-agent --help)");
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
  } else if (raw.node_register == "auto" && !command.empty() &&
             std::find(command.begin(), command.end(), "--") != command.end()) {
    // `--node-register PATH -- node app.js`: a bare flag takes no value,
    // so PATH would be run as COMMAND.
    result.exit_code = 2;
    result.message = absl::StrCat(
        "corral-agent: --node-register takes a path only as "
        "--node-register=PATH; '",
        command.front(), "' would be run as COMMAND (see corral-agent --help)");
    return result;
  }
  absl::StatusOr<Options> options = Validate(raw, std::move(command));
  if (!options.ok()) {
    result.exit_code = 2;
    const std::string message(options.status().message());
    result.message =
        absl::StrCat("corral-agent: ", message,
                     MissingDashDashHint(RefusedCliValue(message)));
    return result;
  }
  result.options = std::move(*options);
  return result;
}

}  // namespace corral::agent
