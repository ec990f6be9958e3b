// Shared by the two halves of agent/options.h, and by nothing else: the
// flag table (options.cc: the CLI11 definitions, the help text and
// ParseCommandLine) and the validation that turns the raw flag values into
// Options (options_validate.cc).
#ifndef CORRAL_AGENT_OPTIONS_INTERNAL_H_
#define CORRAL_AGENT_OPTIONS_INTERNAL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/options.h"

namespace corral::agent::options_internal {

// Raw flag values as CLI11 collects them (flag, else environment).
struct RawFlags {
  std::string workers;
  std::vector<std::string> listen;
  std::string balance;
  std::string ready;
  std::string ready_timeout;
  std::string stop_timeout;
  std::string drain_delay;
  std::string watchdog;
  std::string stop_signal;
  std::string accept_stall;
  std::string restart_backoff;
  std::string log_format;
  std::string cpu_rounding;
  int min_workers = 0;
  std::string max_workers;
  std::string max_worker_memory;
  std::string control_socket;
  std::string probe_port;
  std::string http_port;
  std::string probe_address;
  int min_ready = 0;
  std::string control_tls_listen;
  std::string control_tls_cert;
  std::string control_tls_key;
  std::string control_tls_client_ca;
  std::string node_register;
};

// The environment variable a flag is also read from (options.cc).
std::string EnvName(absl::string_view flag);

// `raw` checked and turned into Options, with `command` as COMMAND; an error
// names the flag (or its environment variable) and the value
// (options_validate.cc).
absl::StatusOr<Options> Validate(const RawFlags& raw,
                                 std::vector<std::string> command);

}  // namespace corral::agent::options_internal

#endif  // CORRAL_AGENT_OPTIONS_INTERNAL_H_
