#include "tests/worker/endpoints.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <utility>
#include <vector>

#include "tests/worker/notify.h"

extern char** environ;

namespace corral::testworker {
namespace {

std::string g_startup_fds;   // "fd N -> target" lines at exec time
std::string g_startup_sigs;  // "startup.SigBlk: ..." lines at exec time
std::atomic<bool> g_hung{false};
std::mutex g_say_mu;

// Lists /proc/self/fd as "fd N -> target" lines, sorted by fd, leaving out
// the directory's own fd.
std::string ListFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return "opendir /proc/self/fd failed\n";
  std::vector<std::pair<int, std::string>> fds;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::atoi(e->d_name);
    if (fd == dirfd(dir)) continue;
    char target[PATH_MAX];
    std::string link = std::string("/proc/self/fd/") + e->d_name;
    ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
    fds.emplace_back(fd,
                     std::string(target, n > 0 ? static_cast<size_t>(n) : 0));
  }
  closedir(dir);
  std::sort(fds.begin(), fds.end());
  std::string out;
  for (const auto& [fd, target] : fds) {
    out += "fd " + std::to_string(fd) + " -> " + target + "\n";
  }
  return out;
}

// The SigBlk/SigIgn/SigCgt lines of /proc/self/status (the main thread's).
std::string SignalLines(const std::string& prefix) {
  std::ifstream status("/proc/self/status");
  std::string line, out;
  while (std::getline(status, line)) {
    if (line.rfind("SigBlk:", 0) == 0 || line.rfind("SigIgn:", 0) == 0 ||
        line.rfind("SigCgt:", 0) == 0) {
      out += prefix + line + "\n";
    }
  }
  return out;
}

std::string Env() {
  static const char* const kPrefixes[] = {"LISTEN_",
                                          "NOTIFY_SOCKET=", "CORRAL_",
                                          "WATCHDOG_", "NODE_APP_INSTANCE="};
  std::vector<std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    for (const char* p : kPrefixes) {
      if (std::strncmp(*e, p, std::strlen(p)) == 0) vars.emplace_back(*e);
    }
  }
  std::sort(vars.begin(), vars.end());
  std::string out;
  for (const auto& v : vars) out += v + "\n";
  return out;
}

std::string SigState() {
  return g_startup_sigs + SignalLines("") +
         "pgid: " + std::to_string(getpgrp()) + "\n" +
         "ppid: " + std::to_string(getppid()) + "\n" +
         "sid: " + std::to_string(getsid(0)) + "\n";
}

// Line i of /log: "<tag>-<i>-" then 'a'..'z' repeating, `len` bytes in all.
std::string LogLine(const std::string& tag, long i, long len) {
  std::string line = tag + "-" + std::to_string(i) + "-";
  for (long k = static_cast<long>(line.size()); k < len; ++k) {
    line += static_cast<char>('a' + k % 26);
  }
  return line;
}

// How /orphans behaves: each orphan lives ms + (index * 37) % spread_ms
// milliseconds and exits with index % 4; with setsid it leaves the worker's
// process group (and session), so signals to the group miss it.
struct OrphanPlan {
  long ms = 200;
  long spread_ms = 800;
  bool setsid = false;
};

// Runs in a child forked from a threaded process: async-signal-safe calls
// only (sigaction, sigprocmask, close_range, setsid, fork, nanosleep, write,
// _exit). It forks a grandchild, reports the grandchild's pid on `report_fd`
// and exits at once, so the grandchild is orphaned to the nearest subreaper
// (the agent).
[[noreturn]] void OrphanParent(int report_fd, long index, OrphanPlan plan) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < 32; ++sig) sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // Keep no listening socket or client connection alive in the orphans.
  if (report_fd > 3) close_range(3, static_cast<unsigned>(report_fd) - 1, 0);
  close_range(static_cast<unsigned>(report_fd) + 1, ~0U, 0);
  if (plan.setsid) setsid();
  pid_t grandchild = fork();
  if (grandchild == 0) {
    close(report_fd);
    long ms =
        plan.ms + (plan.spread_ms > 0 ? (index * 37) % plan.spread_ms : 0);
    timespec ts{ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    _exit(static_cast<int>(index % 4));
  }
  if (grandchild > 0) {
    ssize_t n = write(report_fd, &grandchild, sizeof grandchild);
    _exit(n == sizeof grandchild ? 0 : 1);
  }
  _exit(1);
}

std::string SpawnOrphans(const Request& request) {
  long n = std::clamp(QueryInt(request, "n", 10), 0L, 2000L);
  OrphanPlan plan;
  plan.ms = QueryInt(request, "ms", plan.ms);
  plan.spread_ms = QueryInt(request, "spread_ms", plan.spread_ms);
  plan.setsid = QueryInt(request, "setsid", 0) != 0;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return "pipe failed\n";
  std::vector<pid_t> children;
  for (long i = 0; i < n; ++i) {
    pid_t child = fork();
    if (child == 0) OrphanParent(pipe_fds[1], i, plan);
    if (child > 0) children.push_back(child);
  }
  close(pipe_fds[1]);
  // Our own children exit at once; reap them so only the grandchildren are
  // left for the agent.
  for (pid_t child : children) {
    while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  std::string out =
      Identity() + " orphans=" + std::to_string(children.size()) + " pids=";
  pid_t pid;
  bool first = true;
  while (read(pipe_fds[0], &pid, sizeof pid) == sizeof pid) {
    out += (first ? "" : ",") + std::to_string(pid);
    first = false;
  }
  close(pipe_fds[0]);
  return out + "\n";
}

int StreamFd(const Request& request) {
  auto stream = request.query.find("stream");
  return stream != request.query.end() && stream->second == "stderr" ? 2 : 1;
}

// /echo?line=...: writes the decoded line as is (any bytes but '\n').
std::string Echo(const Request& request) {
  auto line = request.query.find("line");
  std::string text = line != request.query.end() ? line->second : "";
  Say(StreamFd(request), text);
  return Identity() + " echoed " + std::to_string(text.size()) + " bytes\n";
}

std::string WriteLog(const Request& request) {
  long n = QueryInt(request, "n", 1);
  long len = QueryInt(request, "len", 80);
  int fd = StreamFd(request);
  auto tag = request.query.find("tag");
  std::string t = tag != request.query.end() ? tag->second : "log";
  for (long i = 0; i < n; ++i) Say(fd, LogLine(t, i, len));
  return Identity() + " logged " + std::to_string(n) + " lines of " +
         std::to_string(len) + " bytes to fd " + std::to_string(fd) + "\n";
}

}  // namespace

void RecordStartupState() {
  g_startup_fds = ListFds();
  g_startup_sigs = SignalLines("startup.");
}

bool WatchdogHung() { return g_hung.load(); }

std::string Identity() {
  const char* id = std::getenv("CORRAL_WORKER_ID");
  const char* gen = std::getenv("CORRAL_WORKER_GENERATION");
  return std::string("worker=") + (id ? id : "-") +
         " gen=" + (gen ? gen : "-") + " pid=" + std::to_string(getpid());
}

void Say(int fd, const std::string& line) {
  std::string out = line + "\n";
  std::lock_guard<std::mutex> lock(g_say_mu);
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = write(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

Response HandleRequest(const Request& request) {
  const std::string& p = request.path;
  Response r;
  if (p == "/") {
    r.body = Identity() + "\n";
  } else if (p == "/fds") {
    r.body = Identity() + "\n" +
             (request.query.count("now") ? ListFds() : g_startup_fds);
  } else if (p == "/env") {
    r.body = Identity() + "\n" + Env();
  } else if (p == "/sigstate") {
    r.body = Identity() + "\n" + SigState();
  } else if (p == "/log") {
    r.body = WriteLog(request);
  } else if (p == "/orphans") {
    r.body = SpawnOrphans(request);
  } else if (p == "/echo") {
    r.body = Echo(request);
  } else if (p == "/exit") {
    r.exit_after = true;
    r.exit_code = static_cast<int>(QueryInt(request, "code", 0));
    r.body = Identity() + " exiting with " + std::to_string(r.exit_code) + "\n";
  } else if (p == "/hang") {
    g_hung = true;
    r.body = Identity() + " watchdog pings stopped\n";
  } else if (p == "/notify") {
    auto msg = request.query.find("msg");
    long pad = std::clamp(QueryInt(request, "pad", 0), 0L, 1L << 20);
    bool ok = msg != request.query.end() &&
              Notify(msg->second + std::string(static_cast<size_t>(pad), 'x'));
    r.status = ok ? 200 : 500;
    r.body = ok ? "sent\n" : "notify failed\n";
  } else {
    r.status = 404;
    r.body = "no such endpoint: " + p + "\n";
  }
  return r;
}

}  // namespace corral::testworker
