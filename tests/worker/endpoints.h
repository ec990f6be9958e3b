// The test worker's HTTP endpoints. Each one shows a piece of the state the
// agent handed over (fds, environment, signal state) or makes the worker do
// something the agent must cope with (log, orphan, exit, hang).
// Thread-safe: called from any connection thread.
#ifndef CORRAL_TESTS_WORKER_ENDPOINTS_H_
#define CORRAL_TESTS_WORKER_ENDPOINTS_H_

#include <string>

#include "tests/worker/http.h"

namespace corral::testworker {

struct Response {
  int status = 200;
  std::string body;
  bool exit_after = false;  // _exit(exit_code) once the answer is sent
  int exit_code = 0;
};

// Snapshots /proc/self/fd and the signal lines of /proc/self/status. Call
// first thing in main(), before the worker opens or changes anything, so
// /fds and /sigstate show exactly what the agent handed over.
void RecordStartupState();

// Routes one request (after any ?sleep_ms delay).
Response HandleRequest(const Request& request);

// True once /hang asked the worker to stop its watchdog pings.
bool WatchdogHung();

// Writes `line` plus '\n' to fd 1 or 2 in one piece (a mutex keeps lines of
// different threads apart). Unbuffered, so the agent sees it at once.
void Say(int fd, const std::string& line);

// "worker=<id> gen=<gen> pid=<pid>": the identity line of every answer.
std::string Identity();

}  // namespace corral::testworker

#endif  // CORRAL_TESTS_WORKER_ENDPOINTS_H_
