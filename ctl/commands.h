// corralctl's commands: one function each, returning the exit code (see
// ExitCode). Output goes to stdout (tables, or JSON with -o json), errors to
// stderr.
#ifndef CORRAL_CTL_COMMANDS_H_
#define CORRAL_CTL_COMMANDS_H_

#include <optional>
#include <string>
#include <vector>

#include "ctl/client.h"

namespace corral::ctl {

int Status(Connection& c);
int Ps(Connection& c);
// `count` is a number or "auto".
// Sets the count and, unless `no_wait`, shows each slot as it becomes READY
// or stops, returning when every one is done (1 when a new worker failed
// to start or the scale was taken over).
int Scale(Connection& c, const std::string& count, bool no_wait);
int Reload(Connection& c);
int Drain(Connection& c);
int Resume(Connection& c);
int Stop(Connection& c, bool quick);
int Restart(Connection& c, int worker);
int Signal(Connection& c, int worker, const std::string& signal);
// One worker in depth: state, process, command, environment names, fds.
int Describe(Connection& c, int worker);
int Logs(Connection& c, std::optional<int> worker, int tail, bool follow,
         bool timestamps);
int Events(Connection& c, const std::vector<std::string>& names);
// Live view; `count` frames (0 = until q or Ctrl-C), every `interval` s.
int Top(Connection& c, double interval, int count);
// Checks each service (default: liveness and readiness); 0 when all serve.
int Health(Connection& c, std::vector<std::string> services);
int Version(const Settings& settings);

}  // namespace corral::ctl

#endif  // CORRAL_CTL_COMMANDS_H_
