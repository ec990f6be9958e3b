// corralctl top: a live view of the workers with CPU and memory, redrawn
// every interval (like pm2 monit or htop). q or Ctrl-C quits.
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ctl/commands.h"
#include "ctl/render.h"

namespace corral::ctl {
namespace {

volatile std::sig_atomic_t interrupted = 0;

void OnInterrupt(int) { interrupted = 1; }

// Keys without Enter and without echo while top runs; restored on exit.
class RawKeys {
 public:
  explicit RawKeys(bool enable) {
    if (!enable || tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawKeys() {
    if (active_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  RawKeys(const RawKeys&) = delete;
  RawKeys& operator=(const RawKeys&) = delete;
  bool active() const { return active_; }

 private:
  termios saved_{};
  bool active_ = false;
};

// Waits up to `seconds`; true when the user asked to quit.
bool WaitForQuit(const RawKeys& keys, double seconds) {
  pollfd p{STDIN_FILENO, POLLIN, 0};
  const int ms = static_cast<int>(seconds * 1000);
  if (!keys.active()) {
    usleep(static_cast<useconds_t>(ms) * 1000);
    return interrupted != 0;
  }
  if (poll(&p, 1, ms) > 0) {
    char key = 0;
    if (read(STDIN_FILENO, &key, 1) == 1 && (key == 'q' || key == 'Q')) {
      return true;
    }
  }
  return interrupted != 0;
}

// "[||||||      ]" filled to `fraction` of `width`.
std::string Bar(double fraction, int width) {
  const int filled =
      std::clamp(static_cast<int>(fraction * width + 0.5), 0, width);
  return absl::StrCat("[", std::string(filled, '|'),
                      std::string(width - filled, ' '), "]");
}

std::string Colored(const std::string& state, bool color) {
  if (!color) return state;
  const char* code = state == "READY"                             ? "32"
                     : state == "STARTING" || state == "STOPPING" ? "33"
                                                                  : "31";
  return absl::StrCat("\x1b[", code, "m", state, "\x1b[0m");
}

std::string Frame(const corral::v1::GetStatusResponse& s, bool color) {
  double cpu = 0;
  int64_t rss = 0;
  // The memory bar fills toward the per-worker bound (--max-worker-memory
  // or the cgroup limit shared out); with no bound there is no bar, only
  // the size: a bar against the largest worker looked like a limit.
  const int64_t bound = s.memory().per_worker_bytes();
  for (const auto& w : s.workers()) {
    cpu += w.cpu_percent();
    rss += w.rss_bytes();
  }
  std::string out = absl::StrFormat(
      "corral top: agent %s, pid %d, up %s, %d of %d workers READY%s\n"
      "cpu %.1f%% (100%% = one core), memory %s%s\n\n",
      AgentStateName(s.state()), s.pid(),
      FormatDuration(static_cast<double>(s.uptime().seconds())),
      s.ready_workers(), s.target_workers(), s.auto_workers() ? " (auto)" : "",
      cpu, FormatBytes(rss),
      s.memory().per_worker_bytes() > 0
          ? absl::StrCat(", bound ", FormatBytes(s.memory().per_worker_bytes()),
                         " per worker")
          : "");
  Table table({"ID", "PID", "STATE", "CPU", "", "MEM", "", "RESTARTS", "UPTIME",
               "STATUS"});
  for (const auto& w : s.workers()) {
    const std::string mem_bar =
        bound > 0 ? Bar(static_cast<double>(w.rss_bytes()) / bound, 12) : "";
    table.AddRow({absl::StrCat(w.slot()), w.pid() ? absl::StrCat(w.pid()) : "-",
                  Colored(WorkerStateText(w), color),
                  Bar(w.cpu_percent() / 100.0, 20),
                  absl::StrFormat("%5.1f%%", w.cpu_percent()), mem_bar,
                  FormatBytes(w.rss_bytes()), absl::StrCat(w.restarts()),
                  w.pid() ? Since(w.started_at()) : "-", WorkerNote(s, w)});
  }
  std::string rows = table.Render();
  return out + rows;
}

}  // namespace

int Top(Connection& c, double interval, int count) {
  const bool tty = isatty(STDOUT_FILENO) == 1;
  struct sigaction action {};
  action.sa_handler = OnInterrupt;  // no SA_RESTART: poll returns at once
  sigaction(SIGINT, &action, nullptr);
  RawKeys keys(tty && isatty(STDIN_FILENO) == 1);
  if (tty) Print("\x1b[?25l");  // hide the cursor
  int code = kOk;
  for (int frame = 0; count == 0 || frame < count; ++frame) {
    corral::v1::GetStatusResponse s;
    auto context = c.Context();
    grpc::Status status = c.agent().GetStatus(context.get(), {}, &s);
    if (!status.ok()) {
      code = c.Fail("top", status);
      break;
    }
    if (c.settings().json) {
      Print(ToJson(s, false));
    } else {
      Print(tty ? "\x1b[H\x1b[2J" + Frame(s, true) + "\n(q to quit)"
                : Frame(s, false) + "\n");
    }
    if (count != 0 && frame + 1 >= count) break;
    if (WaitForQuit(keys, interval)) break;
  }
  if (tty) Print("\x1b[?25h\n");  // show the cursor again
  return code;
}

}  // namespace corral::ctl
