// corral-agent's command line: flags, CORRAL_* environment variables, and
// their validation into one plain struct.
//
// Options{} is the one source of the defaults: the flags start from it and
// --help prints it (HelpText), so a default is changed here and nowhere else.
//
// Defined in options.cc (the flag table: CLI11 definitions, help text,
// ParseCommandLine) and options_validate.cc (the checks that turn the flag
// values into Options, and the duration flags).
#ifndef CORRAL_AGENT_OPTIONS_H_
#define CORRAL_AGENT_OPTIONS_H_

#include <csignal>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/core/logger.h"
#include "agent/os/listen_socket.h"
#include "agent/supervisor/clock.h"
#include "agent/supervisor/defaults.h"
#include "agent/supervisor/restart_policy.h"
#include "agent/supervisor/sizing.h"
#include "agent/supervisor/steering.h"

namespace corral::agent {

enum class ReadyMode { kNotify, kDelay, kIpc };

// --probe-port=auto, --http-port=auto: bind port 0 and let the kernel pick,
// so side-by-side agents (tests, benchmarks) never race for a free port.
inline constexpr int kAutoPort = -1;

struct Options {
  // Worker count; nullopt = auto (the CPUs this process may use).
  std::optional<int> workers;
  // --workers=auto: rounding and clamps (--cpu-rounding, --min-workers,
  // --max-workers). max_workers also bounds Scale requests (auto: a
  // ceiling relative to the usable CPUs, DecideScaleCeiling).
  SizingPolicy sizing;
  // --max-worker-memory: replace a worker whose RSS stays above this.
  WorkerMemoryBound max_worker_memory;
  // Sockets opened before the first worker and inherited by all.
  std::vector<ListenSpec> listen;
  // How TCP connections are spread over the workers (docs/balance.md);
  // kAuto is resolved when the sockets open (Balancer::Open).
  BalanceMode balance = BalanceMode::kAuto;
  // How a worker becomes READY; with kDelay, after `ready_delay`.
  ReadyMode ready = ReadyMode::kNotify;
  Duration ready_delay = Duration::zero();
  // STARTING longer than this: killed, counted as a failure.
  Duration ready_timeout = kDefaultReadyTimeout;
  // The graceful stop signal (reload, drain, scale down, shutdown); the
  // forced one after stop_timeout is always SIGKILL.
  int stop_signal = SIGTERM;
  // stop_signal to SIGKILL when stopping a worker.
  Duration stop_timeout = kDefaultStopTimeout;
  // Not ready before SIGTERM on drain/shutdown (endpoint propagation).
  Duration drain_delay = kDefaultDrainDelay;
  // READY worker silent longer than this = hung; zero = off.
  Duration watchdog = kDefaultWatchdog;
  // Connections waiting this long on a socket whose READY worker takes
  // none: that worker stops counting as ready; zero = off.
  Duration accept_stall = kDefaultAcceptStall;
  BackoffOptions backoff;
  LogFormat log_format = LogFormat::kText;

  // --- control plane ---
  // The Agent service's unix socket (mode 0600); "" = none.
  std::string control_socket = "/run/corral/agent.sock";
  // The kubelet's gRPC health port (grpc.health.v1 only); 0 = off;
  // kAutoPort = a free port the kernel picks (control_listening names it).
  int probe_port = 0;
  // /livez, /readyz, /metrics; 0 = off; kAutoPort as above.
  int http_port = 0;
  // The address the probe and HTTP ports bind to.
  std::string probe_address = "0.0.0.0";
  // readiness = not draining and at least this many workers READY.
  int min_ready = 1;
  // Remote control over TCP with mutual TLS; all four or none.
  std::string control_tls_listen;  // HOST:PORT
  std::string control_tls_cert;
  std::string control_tls_key;
  std::string control_tls_client_ca;
  // --node-register: what every worker's NODE_OPTIONS gets a `--require`
  // of (an absolute path to register.js, or kNodeRegisterModule); "" = off.
  std::string node_register;
  // COMMAND [ARGS...]
  std::vector<std::string> command;
};

// What parsing decided: run with `options`, or exit with `exit_code`
// after printing `message` (usage errors: 2 on stderr; --help: 0 on stdout).
struct ParsedCommandLine {
  std::optional<Options> options;
  int exit_code = 0;
  std::string message;
};

ParsedCommandLine ParseCommandLine(int argc, const char* const* argv);

// The --help text, every "(default X)" printed from `defaults`; the binary
// passes Options{}.
std::string HelpText(const Options& defaults);

// The longest duration a flag takes (one year): deadlines are computed as
// steady_clock now + value, which must not overflow.
inline constexpr Duration kMaxFlagDuration = std::chrono::hours(24 * 365);

// Parses a duration >= 0 as common::ParseDuration does ("500ms", "5s",
// "1m30s", "1.5s", "0"; a bare number other than 0 is refused) and at most
// kMaxFlagDuration. Errors name
// the flag (or its environment variable) and the value.
absl::StatusOr<Duration> ParseDurationFlag(const std::string& flag,
                                           const std::string& text);

// Prints a duration as ParseDurationFlag reads it: "20s", "100ms", "0".
std::string FormatDurationFlag(Duration d);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OPTIONS_H_
