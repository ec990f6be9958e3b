// corral-test-worker: a tiny HTTP/1.1 server for corral's black-box tests and
// benchmarks. It speaks systemd's socket activation (LISTEN_FDS) and sd_notify
// (READY, STOPPING, WATCHDOG), drains on SIGTERM, and has endpoints that show
// what the agent handed over or make it misbehave on purpose. See
// tests/worker/README.md for the endpoints and flags.
//
// Threads: the main thread owns the listening sockets and the signal pipe;
// each connection gets its own thread; a watchdog thread pings when asked.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/worker/endpoints.h"
#include "tests/worker/http.h"
#include "tests/worker/notify.h"

namespace corral::testworker {
namespace {

struct Options {
  long ready_delay_ms = 0;     // wait this long before READY=1 and accept
  bool never_ready = false;    // never send READY=1 (but still serve)
  long exit_after_ms = -1;     // crash on our own after this long
  int exit_code = 1;           // ... with this code
  std::string fail_if_exists;  // exit 1 before READY when this path exists
  bool ignore_term = false;    // SIG_IGN for SIGTERM: the agent must SIGKILL
  bool print_startup = false;  // a line to stdout and to stderr at start
  bool log_requests = false;   // "req <target>" on stdout as each one starts
  // Only this signal drains (0 = SIGTERM and SIGINT); the other of the two
  // ends the process at once, in-flight requests lost (a PM2 app that
  // closes gracefully on SIGINT only).
  int graceful_signal = 0;
  // READY=1, but never accept on the inherited sockets (an app that binds
  // a port of its own instead of fd 3).
  bool never_accept = false;
  // READY=1, but accept only once this path exists (checked every 100 ms).
  std::string accept_when_exists;
};

// Connection bookkeeping, for the drain. Guarded by g_mu.
struct Conn {
  bool idle = false;     // keep-alive, waiting for its next request
  bool closing = false;  // the drain shut it down while idle
};
std::mutex g_mu;
std::condition_variable g_cv;
std::map<int, Conn> g_conns;
bool g_draining = false;

Options g_options;
std::vector<int> g_listen_fds;
int g_signal_pipe[2] = {-1, -1};

[[noreturn]] void Usage(const std::string& arg) {
  Say(2, "corral-test-worker: unknown or bad flag '" + arg +
             "'; flags: --ready-delay-ms=N --never-ready --exit-after-ms=N "
             "--exit-code=N --fail-if-exists=PATH --ignore-term "
             "--print-startup --log-requests --graceful-signal=INT|TERM "
             "--never-accept --accept-when-exists=PATH");
  _exit(2);
}

long NumberFlag(const std::string& arg, size_t prefix_len) {
  char* end = nullptr;
  const char* value = arg.c_str() + prefix_len;
  long v = std::strtol(value, &end, 10);
  if (*value == '\0' || *end != '\0' || v < 0) Usage(arg);
  return v;
}

Options ParseFlags(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto has = [&a](const char* p) { return a.rfind(p, 0) == 0; };
    if (has("--ready-delay-ms="))
      o.ready_delay_ms = NumberFlag(a, 17);
    else if (a == "--never-ready")
      o.never_ready = true;
    else if (has("--exit-after-ms="))
      o.exit_after_ms = NumberFlag(a, 16);
    else if (has("--exit-code="))
      o.exit_code = static_cast<int>(NumberFlag(a, 12));
    else if (has("--fail-if-exists="))
      o.fail_if_exists = a.substr(17);
    else if (a == "--ignore-term")
      o.ignore_term = true;
    else if (a == "--print-startup")
      o.print_startup = true;
    else if (a == "--log-requests")
      o.log_requests = true;
    else if (a == "--graceful-signal=INT")
      o.graceful_signal = SIGINT;
    else if (a == "--graceful-signal=TERM")
      o.graceful_signal = SIGTERM;
    else if (a == "--never-accept")
      o.never_accept = true;
    else if (has("--accept-when-exists="))
      o.accept_when_exists = a.substr(21);
    else
      Usage(a);
  }
  return o;
}

// Binds 127.0.0.1:$PORT (0 = any) when the worker runs on its own.
int BindPort() {
  const char* port = std::getenv("PORT");
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port ? std::atoi(port) : 0));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(fd, 128) != 0) {
    Say(2, std::string("corral-test-worker: bind/listen: ") +
               std::strerror(errno));
    _exit(1);
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  Say(2, "listening on 127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
  return fd;
}

// Takes the inherited sockets (sd_listen_fds semantics: only when LISTEN_PID
// is our pid) or binds its own.
std::vector<int> TakeListenFds() {
  const char* pid = std::getenv("LISTEN_PID");
  const char* count = std::getenv("LISTEN_FDS");
  if (pid == nullptr || count == nullptr) return {BindPort()};
  if (std::strtol(pid, nullptr, 10) != getpid()) {
    Say(2, std::string("LISTEN_PID=") + pid + " is not us (" +
               std::to_string(getpid()) + "): binding PORT instead");
    return {BindPort()};
  }
  std::vector<int> fds;
  for (long i = 0; i < std::strtol(count, nullptr, 10); ++i) {
    int fd = 3 + static_cast<int>(i);
    // Like sd_listen_fds(): no further exec inherits them. O_NONBLOCK is on
    // the open file description shared with the agent and the other workers;
    // every worker needs it, since all of them wake on one accept queue and
    // the losers must not block in accept().
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fds.push_back(fd);
  }
  return fds;
}

// Only async-signal-safe work here: hand the signal number to the main loop.
void OnSignal(int sig) {
  int saved = errno;
  char byte = static_cast<char>(sig);
  ssize_t ignored = write(g_signal_pipe[1], &byte, 1);
  (void)ignored;
  errno = saved;
}

void InstallSignalHandlers() {
  if (pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) _exit(1);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH}) {
    sigaction(sig, &sa, nullptr);
  }
  if (g_options.ignore_term) {
    sa.sa_handler = SIG_IGN;
    sigaction(SIGTERM, &sa, nullptr);
  }
}

bool IsDraining() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_draining;
}

// Marks the connection idle (between keep-alive requests) or busy. Returns
// false when the connection must end (draining, or the drain shut it down).
bool SetIdle(int fd, bool idle) {
  std::lock_guard<std::mutex> lock(g_mu);
  Conn& c = g_conns[fd];
  if (c.closing || (idle && g_draining)) return false;
  c.idle = idle;
  return true;
}

void ServeConnection(int fd) {
  std::string buffer;
  bool first = true;
  for (;;) {
    // A connection that has not sent its first request yet counts as in
    // flight: it was accepted, so the drain waits for it.
    bool waiting = !first && buffer.empty();
    if (waiting && !SetIdle(fd, true)) break;
    Request request;
    ReadResult read = ReadRequest(fd, buffer, request);
    if (!SetIdle(fd, false) || read != ReadResult::kOk) break;
    first = false;
    if (g_options.log_requests) Say(1, "req " + request.target);
    long sleep_ms = QueryInt(request, "sleep_ms", 0);
    if (sleep_ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    Response response = HandleRequest(request);
    bool keep = request.keep_alive && !response.exit_after && !IsDraining();
    WriteResponse(fd, response.status, response.body, keep);
    if (response.exit_after) {
      Say(2, Identity() + " exiting with code " +
                 std::to_string(response.exit_code));
      _exit(response.exit_code);
    }
    if (!keep) break;
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_conns.erase(fd);
  close(fd);
  g_cv.notify_all();
}

void AcceptOne(int listen_fd) {
  int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return;  // EAGAIN: another worker won the race
  // A client that connects and never sends must not hold up a drain forever.
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_conns[fd] = Conn{};
  }
  std::thread(ServeConnection, fd).detach();
}

// SIGTERM: STOPPING=1, stop accepting (our copies of the listening sockets
// close; the agent's stay open so queued connections go to other workers),
// end idle keep-alive connections, finish every in-flight request, exit 0.
[[noreturn]] void Drain() {
  Notify("STOPPING=1");
  for (int fd : g_listen_fds) close(fd);
  std::unique_lock<std::mutex> lock(g_mu);
  g_draining = true;
  Say(2, Identity() + " draining: SIGTERM, " + std::to_string(g_conns.size()) +
             " connections open");
  for (auto& [fd, conn] : g_conns) {
    if (conn.idle) {
      conn.closing = true;
      shutdown(fd, SHUT_RDWR);
    }
  }
  g_cv.wait(lock, [] { return g_conns.empty(); });
  Say(2, Identity() + " drained, exiting 0");
  _exit(0);
}

// Reads pending signals from the pipe; drains (and never returns) on
// SIGTERM/SIGINT, logs any other one on stdout.
void HandleSignals() {
  char sigs[64];
  ssize_t n = read(g_signal_pipe[0], sigs, sizeof sigs);
  for (ssize_t i = 0; i < n; ++i) {
    int sig = sigs[i];
    if (sig == SIGTERM || sig == SIGINT) {
      if (g_options.graceful_signal == 0 || g_options.graceful_signal == sig) {
        Drain();
      }
      size_t open = 0;
      {
        std::lock_guard<std::mutex> lock(g_mu);
        open = g_conns.size();
      }
      Say(2, Identity() + " not graceful on SIG" + sigabbrev_np(sig) +
                 ": exiting at once, " + std::to_string(open) +
                 " connections dropped");
      _exit(1);
    }
    const char* name = sigabbrev_np(sig);
    Say(1, Identity() + " got signal " + std::to_string(sig) + " SIG" +
               (name ? name : "?"));
  }
}

// Waits `ms` (forever when < 0) while still answering signals.
void WaitHandlingSignals(long ms) {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    long left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (ms >= 0 && left <= 0) return;
    pollfd p{g_signal_pipe[0], POLLIN, 0};
    if (poll(&p, 1, ms < 0 ? -1 : static_cast<int>(left)) > 0) HandleSignals();
  }
}

void StartWatchdog() {
  long usec = WatchdogUsec();
  if (usec == 0) return;
  std::thread([usec] {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::microseconds(usec / 3));
      if (!WatchdogHung()) Notify("WATCHDOG=1");
    }
  }).detach();
}

void StartExitTimer() {
  if (g_options.exit_after_ms < 0) return;
  std::thread([] {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(g_options.exit_after_ms));
    Say(2, Identity() + " exiting after " +
               std::to_string(g_options.exit_after_ms) + " ms with code " +
               std::to_string(g_options.exit_code));
    _exit(g_options.exit_code);
  }).detach();
}

// --accept-when-exists: READY, but nothing accepted until PATH exists.
void WaitForAcceptFile() {
  if (g_options.accept_when_exists.empty()) return;
  while (access(g_options.accept_when_exists.c_str(), F_OK) != 0) {
    pollfd p{g_signal_pipe[0], POLLIN, 0};
    if (poll(&p, 1, 100) > 0) HandleSignals();
  }
  Say(2,
      Identity() + " accepting: " + g_options.accept_when_exists + " exists");
}

[[noreturn]] void ServeForever() {
  WaitForAcceptFile();
  std::vector<pollfd> fds{{g_signal_pipe[0], POLLIN, 0}};
  if (!g_options.never_accept) {
    for (int fd : g_listen_fds) fds.push_back({fd, POLLIN, 0});
  }
  for (;;) {
    if (poll(fds.data(), fds.size(), -1) < 0) continue;  // EINTR
    if (fds[0].revents) HandleSignals();
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents & POLLIN) AcceptOne(fds[i].fd);
    }
  }
}

int Main(int argc, char** argv) {
  RecordStartupState();
  g_options = ParseFlags(argc, argv);
  if (g_options.print_startup) {
    Say(1, "startup " + Identity() + " stream=stdout");
    Say(2, "startup " + Identity() + " stream=stderr");
  }
  if (!g_options.fail_if_exists.empty() &&
      access(g_options.fail_if_exists.c_str(), F_OK) == 0) {
    Say(2, Identity() + " failing on purpose: " + g_options.fail_if_exists +
               " exists");
    return 1;
  }
  InstallSignalHandlers();
  NotifyInit();
  g_listen_fds = TakeListenFds();
  StartExitTimer();
  // Not ready = not accepting: with a shared accept queue, a worker that
  // accepts before READY would take traffic the agent thinks it cannot.
  WaitHandlingSignals(g_options.ready_delay_ms);
  if (!g_options.never_ready) Notify("READY=1");
  Notify("STATUS=serving " + std::to_string(g_listen_fds.size()) +
         " socket(s)");
  StartWatchdog();
  ServeForever();
}

}  // namespace
}  // namespace corral::testworker

int main(int argc, char** argv) { return corral::testworker::Main(argc, argv); }
