// Fuzzes corral-agent's command line (agent/options.h ParseCommandLine,
// CLI11 underneath) and --listen specs (agent/os/listen_socket.h). Flags
// come from a deployment's YAML or a CORRAL_* environment a user wrote:
// untrusted in the sense that any text must give a clear error, never a
// crash or a value the agent cannot use.
//
// Input: one argument per line; the first byte picks the mode (even: the
// lines are corral-agent's arguments, "-- /bin/true" appended unless
// present; odd: the whole rest is one --listen value).
// Invariants: a refused command line exits 2 with a message; an accepted
// one has every duration >= 0 and small enough that now + value cannot
// overflow, ports within [-1, 65535], a command, and listen specs that write
// back to text parsing to the same spec.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/options.h"
#include "agent/os/listen_socket.h"
#include "tests/fuzz/fuzz_check.h"

namespace corral::agent {
namespace {

std::string FormatSpec(const ListenSpec& s) {
  if (s.is_unix) return absl::StrCat(s.name, "=unix:", s.path);
  const bool bracket =
      absl::StrContains(s.host, ':') || absl::StartsWith(s.host, "[");
  return absl::StrCat(s.name, "=tcp://", bracket ? "[" : "", s.host,
                      bracket ? "]" : "", ":", s.port);
}

void CheckSpec(const ListenSpec& s, std::string_view from) {
  FUZZ_CHECK(!s.name.empty() && !absl::StrContains(s.name, ':'),
             "LISTEN_FDNAMES entry '", fuzz::Shown(s.name), "' from ",
             fuzz::Shown(from));
  if (s.is_unix) {
    FUZZ_CHECK(!s.path.empty() && s.path.size() < 108, "unix path");
  } else {
    FUZZ_CHECK(s.port >= 0 && s.port <= 65535, "port ", s.port);
  }
  const std::string again = FormatSpec(s);
  absl::StatusOr<ListenSpec> back = ParseListenSpec(again, "x");
  FUZZ_CHECK(back.ok(), "'", fuzz::Shown(again), "' (from ", fuzz::Shown(from),
             ") refused: ", back.status().ToString());
  FUZZ_CHECK(back->name == s.name && back->is_unix == s.is_unix &&
                 back->host == s.host && back->port == s.port &&
                 back->path == s.path,
             "'", fuzz::Shown(from), "' written as '", fuzz::Shown(again),
             "' parses differently");
}

void CheckDuration(const char* name, Duration d) {
  constexpr auto kCentury = std::chrono::hours(24 * 365 * 100);
  FUZZ_CHECK(d >= Duration::zero() && d <= Duration::max() - kCentury, name,
             " = ", d.count(), " ns");
}

void CheckCommandLine(std::string_view in) {
  std::vector<std::string> args = {"corral-agent"};
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(in.data(), in.size()), '\n')) {
    // argv strings end at a NUL: the kernel never passes one inside.
    args.emplace_back(line.substr(0, line.find('\0')));
  }
  bool has_command = false;
  for (const std::string& a : args) has_command |= a == "--";
  if (!has_command) {
    args.push_back("--");
    args.push_back("/bin/true");
  }
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  ParsedCommandLine r =
      ParseCommandLine(static_cast<int>(argv.size()), argv.data());
  if (!r.options) {
    FUZZ_CHECK(!r.message.empty(), "exit ", r.exit_code, " without a message");
    FUZZ_CHECK(r.exit_code == 2 || r.exit_code == 0, "exit code ", r.exit_code);
    return;
  }
  const Options& o = *r.options;
  FUZZ_CHECK(!o.command.empty(), "accepted without a command");
  CheckDuration("ready_delay", o.ready_delay);
  CheckDuration("ready_timeout", o.ready_timeout);
  CheckDuration("stop_timeout", o.stop_timeout);
  CheckDuration("drain_delay", o.drain_delay);
  CheckDuration("watchdog", o.watchdog);
  CheckDuration("backoff.min", o.backoff.min);
  CheckDuration("backoff.max", o.backoff.max);
  FUZZ_CHECK(o.backoff.min <= o.backoff.max, "backoff min > max");
  FUZZ_CHECK(!o.workers || *o.workers >= 1, "workers ", *o.workers);
  FUZZ_CHECK(o.probe_port >= kAutoPort && o.probe_port <= 65535, "probe_port");
  FUZZ_CHECK(o.http_port >= kAutoPort && o.http_port <= 65535, "http_port");
  for (const ListenSpec& s : o.listen) CheckSpec(s, in);
}

void CheckListen(std::string_view in) {
  absl::StatusOr<ListenSpec> s = ParseListenSpec(in, "default");
  if (!s.ok()) {
    FUZZ_CHECK(absl::StrContains(s.status().message(), "--listen"),
               "error does not name the flag: ", s.status().message());
    return;
  }
  CheckSpec(*s, in);
}

}  // namespace
}  // namespace corral::agent

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    corral::agent::CheckCommandLine(rest);
  } else {
    corral::agent::CheckListen(rest);
  }
  return 0;
}
