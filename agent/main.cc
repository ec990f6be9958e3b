// corral-agent: supervises COMMAND as a pool of workers; built to be PID 1
// of a container. main() reads like a table of contents: parse, take
// signals, open what the workers share, open the control plane, run the
// loop, close the control plane, exit with its status.
#include <cstdio>
#include <memory>

#include "agent/core/agent.h"
#include "agent/options.h"
#include "agent/os/cgroup_reader.h"
#include "agent/os/log_writer.h"
#include "agent/os/resident_code.h"
#include "agent/os/signals.h"
#include "agent/rpc/control_plane.h"

int main(int argc, char** argv) {
  using namespace corral::agent;
  ParsedCommandLine parsed = ParseCommandLine(argc, argv);
  if (!parsed.options) {
    std::fprintf(parsed.exit_code == 0 ? stdout : stderr, "%s\n",
                 parsed.message.c_str());
    return parsed.exit_code;
  }
  // Signals are blocked before any thread exists, so every thread inherits
  // the mask and signals only ever arrive through the signalfd.
  absl::StatusOr<SignalFd> signals = SignalFd::Create();
  if (!signals.ok()) {
    std::fprintf(stderr, "corral-agent: %s\n",
                 std::string(signals.status().message()).c_str());
    return 1;
  }
  LogWriter writer(/*fd=*/1, /*max_pending_bytes=*/4 << 20);
  const LogFormat log_format = parsed.options->log_format;
  ProcCgroupReader cgroups(/*root=*/"");
  absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Create(
      std::move(*parsed.options), std::move(*signals), &writer, &cgroups);
  if (!agent.ok()) {
    const std::string why(agent.status().message());
    std::fprintf(stderr, "corral-agent: %s\n", why.c_str());
    // Also as an event, for log pipelines that read only stdout.
    Logger(log_format, &writer)
        .Emit(Event{Level::kError, "startup_failed", why, {}});
    writer.Flush(std::chrono::seconds(1));
    return 1;
  }
  Logger control_log(log_format, &writer);
  absl::StatusOr<std::unique_ptr<ControlPlane>> control = ControlPlane::Start(
      (*agent)->control(), (*agent)->options(), &control_log);
  if (!control.ok()) {
    const std::string why(control.status().message());
    std::fprintf(stderr, "corral-agent: %s\n", why.c_str());
    control_log.Emit(Event{Level::kError, "startup_failed", why, {}});
    writer.Flush(std::chrono::seconds(1));
    return 1;
  }
  // Startup is over: the code that only ran once (gRPC and protobuf
  // initialisation, server construction) leaves the resident set; what the
  // agent keeps using comes back on first use. It saves RSS only, so a
  // failure changes nothing else and is ignored.
  (void)DropStartupCodePages();
  int code = (*agent)->Run();
  (*control)->Stop();
  writer.Flush(std::chrono::seconds(2));
  return code;
}
