// corralctl: the command line over a corral-agent's control socket.
//
// Exit codes: 0 ok, 1 failed (the agent said no, or a check failed),
// 2 usage (bad command line, or an argument the agent refused),
// 3 not reachable (no agent answers at --socket).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/cli_message.h"
#include "ctl/client.h"
#include "ctl/commands.h"
#include "ctl/completion.h"
#include "ctl/pm2_import.h"
#include "ctl/render.h"

namespace corral::ctl {
namespace {

// The command the user picked, run after the whole line is parsed (global
// flags may come after it).
using Run = std::function<int()>;

struct Arguments {
  Settings settings;
  std::string output = "table";
  double timeout_seconds = 10;
  // Command arguments.
  std::string count;
  int worker = 0;
  std::optional<int> log_worker;
  std::string signal;
  int lines = 100;
  bool follow = false;
  bool timestamps = false;
  bool quick = false;
  bool no_wait = false;
  std::vector<std::string> names;
  std::vector<std::string> services;
  std::string probe;
  double interval = 1;
  int frames = 0;
  std::string shell;
};

// Number checks that name the flag and the value in words. CLI11's own
// (NonNegativeNumber, PositiveNumber) print their range as a 309-digit
// float. The flag name comes first from CLI11 ("--lines: ...").
CLI::Validator WholeNumber(const std::string& what) {
  return CLI::Validator(
      [what](std::string& value) -> std::string {
        int n = 0;
        if (absl::SimpleAtoi(value, &n) && n >= 0) return "";
        return absl::StrCat("'", value, "' is not ", what,
                            ": give a whole number from 0 to 2147483647");
      },
      "INT>=0");
}

CLI::Validator PositiveSeconds() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        double d = 0;
        if (absl::SimpleAtod(value, &d) && d > 0 && d < 1e9) return "";
        return absl::StrCat("'", value,
                            "' is not a number of seconds above 0 (e.g. 0.5)");
      },
      "SECONDS>0");
}

// A subcommand whose callback sets `run` to `command`.
CLI::App* Command(CLI::App& app, Run* run, const std::string& name,
                  const std::string& help, Run command) {
  CLI::App* sub = app.add_subcommand(name, help);
  sub->callback([run, command] { *run = command; });
  return sub;
}

void AddAgentCommands(CLI::App& app, Arguments& a, Run* run) {
  auto with = [&a](int (*fn)(Connection&)) {
    return [&a, fn] {
      Connection c(a.settings);
      return fn(c);
    };
  };
  Command(app, run, "status", "the agent, its sizing and every worker",
          with(Status));
  Command(app, run, "ps", "the worker table", with(Ps));
  CLI::App* scale = Command(
      app, run, "scale",
      "set the worker count (N), or follow the CPU limit again (auto); shows "
      "each new worker READY and each old one stopped",
      [&a] {
        Connection c(a.settings);
        return Scale(c, a.count, a.no_wait);
      });
  scale->add_option("COUNT", a.count, "a number of workers, or auto")
      ->required();
  scale->add_flag("--no-wait", a.no_wait,
                  "return once the agent said what it will do");
  Command(app, run, "reload",
          "rolling reload: replace every worker, one at a time, without "
          "dropping a request; shows each slot as it rolls",
          with(Reload));
  Command(app, run, "drain",
          "not ready at once; stop every worker after --drain-delay; the "
          "agent stays up",
          with(Drain));
  Command(app, run, "resume", "start workers again after a drain",
          with(Resume));
  Command(app, run, "stop",
          "drain every worker, then the agent exits (like "
          "SIGTERM)",
          [&a] {
            Connection c(a.settings);
            return Stop(c, a.quick);
          })
      ->add_flag("--now", a.quick, "skip the drain delay");
  Command(app, run, "describe",
          "one worker in depth: state, pid, command, binary, cwd, restarts, "
          "last exit, CPU, memory, open fds, environment names",
          [&a] {
            Connection c(a.settings);
            return Describe(c, a.worker);
          })
      ->add_option("ID", a.worker, "the worker's slot (see ps)")
      ->required();
  Command(app, run, "restart",
          "replace one worker gracefully: start a new one, wait until it is "
          "READY, then stop the old one",
          [&a] {
            Connection c(a.settings);
            return Restart(c, a.worker);
          })
      ->add_option("ID", a.worker, "the worker's slot (see ps)")
      ->required();
  CLI::App* signal = Command(
      app, run, "signal", "send a signal to one worker's process group", [&a] {
        Connection c(a.settings);
        return Signal(c, a.worker, a.signal);
      });
  signal->add_option("ID", a.worker, "the worker's slot (see ps)")->required();
  signal->add_option("SIG", a.signal, "e.g. USR1, SIGHUP or 10")->required();
}

void AddStreamCommands(CLI::App& app, Arguments& a, Run* run) {
  CLI::App* logs =
      Command(app, run, "logs",
              "worker output: the last lines, "
              "then new ones with -f",
              [&a] {
                Connection c(a.settings);
                return Logs(c, a.log_worker, a.lines, a.follow, a.timestamps);
              });
  logs->add_option("ID", a.log_worker, "one worker's slot; all when left out");
  logs->add_flag("-f,--follow", a.follow, "keep printing new lines");
  logs->add_flag("-t,--timestamps", a.timestamps,
                 "begin each line with the time the agent read it (UTC)");
  logs->add_option("-n,--lines", a.lines, "how many past lines first")
      ->capture_default_str()
      ->check(WholeNumber("a number of lines"));
  Command(app, run, "events",
          "agent events as they happen (worker_ready, "
          "worker_exited, ...)",
          [&a] {
            Connection c(a.settings);
            return Events(c, a.names);
          })
      ->add_option("--name", a.names,
                   "only events with this name "
                   "(repeatable)");
  CLI::App* top =
      Command(app, run, "top",
              "live view of the workers' CPU and memory (q quits)", [&a] {
                Connection c(a.settings);
                return Top(c, a.interval, a.frames);
              });
  top->add_option("--interval", a.interval, "seconds between refreshes")
      ->capture_default_str()
      ->check(PositiveSeconds());
  top->add_option("--count", a.frames,
                  "stop after this many refreshes "
                  "(0 = until q)")
      ->capture_default_str()
      ->check(WholeNumber("a number of refreshes"));
  CLI::App* health = Command(
      app, run, "health",
      "liveness and readiness, as the kubelet sees them; exit 0 when all "
      "SERVING",
      [&a] {
        if (a.probe.empty()) {
          Connection c(a.settings);
          return Health(c, a.services);
        }
        Connection c(a.settings, a.probe);
        return Health(c, a.services);
      });
  health->add_option("--probe", a.probe,
                     "ask the probe port at HOST:PORT instead of the socket");
  health->add_option("--service", a.services,
                     "liveness, readiness or \"\" (repeatable)");
}

void AddPm2Import(CLI::App& app, Arguments& a, Pm2ImportArgs& p, Run* run) {
  CLI::App* cmd = Command(
      app, run, "pm2-import",
      "print the corral-agent command line (or a Kubernetes container) for "
      "each app of a PM2 ecosystem file; what has no equivalent goes to "
      "stderr. A .js/.cjs/.mjs file is your own code: it is run by node, as "
      "PM2 runs it, to read the config. Needs no agent.",
      [&a, &p] {
        p.timeout_seconds = a.timeout_seconds;  // for node to print it
        // `corralctl -o json pm2-import FILE` as well as `pm2-import -o json`.
        if (a.output == "json") p.format = "json";
        return Pm2Import(p);
      });
  cmd->add_option("FILE", p.file, "ecosystem.config.js, .cjs, .mjs or .json")
      ->required();
  cmd->add_option("--env", p.env,
                  "merge env_NAME over env, as pm2 start --env NAME");
  cmd->add_option("--app", p.app, "only the app with this name");
  cmd->add_option("-o,--output", p.format,
                  "shell (a command line), k8s (a pod spec fragment) or json")
      ->capture_default_str();
  cmd->add_option("--port", p.port,
                  "the port the agent listens on (default: the app's PORT, "
                  "else 3000)")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--node", p.node, "the node that evaluates a .js file")
      ->capture_default_str();
}

}  // namespace
}  // namespace corral::ctl

int main(int argc, char** argv) {
  using namespace corral::ctl;
  Arguments a;
  Run run;
  CLI::App app{
      "corralctl: control a corral-agent over its control socket.\n"
      "Exit codes: 0 ok, 1 failed, 2 usage, 3 agent not reachable."};
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", "corralctl " CORRAL_VERSION);
  app.add_option("--socket", a.settings.socket, "the agent's control socket")
      ->envname("CORRAL_SOCKET")
      ->capture_default_str();
  app.add_option("-o,--output", a.output, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_option("--timeout", a.timeout_seconds,
                 "seconds to wait for an answer")
      ->check(PositiveSeconds())
      ->capture_default_str();
  AddAgentCommands(app, a, &run);
  AddStreamCommands(app, a, &run);
  Pm2ImportArgs pm2;
  AddPm2Import(app, a, pm2, &run);
  Command(app, &run, "version", "corralctl's version and the agent's",
          [&a] { return Version(a.settings); });
  Command(app, &run, "completion",
          "print a shell completion script: source <(corralctl completion "
          "bash), source <(corralctl completion zsh), corralctl completion "
          "fish | source",
          [&app, &a] {
            if (a.shell == "bash") {
              Print(BashCompletion(app));
            } else if (a.shell == "zsh") {
              Print(ZshCompletion(app));
            } else if (a.shell == "fish") {
              Print(FishCompletion(app));
            } else {
              return Complain(kUsage,
                              "completion: '" + a.shell +
                                  "' is not a shell corralctl completes: "
                                  "bash, zsh or fish");
            }
            return static_cast<int>(kOk);
          })
      ->add_option("SHELL", a.shell, "bash, zsh or fish")
      ->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports through exceptions; this is the only place they reach.
    // --help and --version are "errors" that print and succeed.
    if (e.get_exit_code() == 0) {
      app.exit(e);
      return kOk;
    }
    std::fprintf(stderr, "corralctl: %s (see corralctl --help)\n",
                 corral::ReadableCliError(e.what()).c_str());
    return kUsage;
  }
  // gRPC reads "unix:a,b" as a list of two addresses: a path with a comma
  // would quietly reach another socket. A "unix:" prefix is accepted.
  if (a.settings.socket.starts_with("unix:")) {
    a.settings.socket.erase(0, 5);
  }
  if (a.settings.socket.find(',') != std::string::npos) {
    return Complain(kUsage, "--socket: '" + a.settings.socket +
                                "' has a comma, which gRPC reads as a list "
                                "of addresses; use a path without one");
  }
  a.settings.json = a.output == "json";
  a.settings.timeout =
      std::chrono::milliseconds(static_cast<int64_t>(a.timeout_seconds * 1000));
  return run ? run() : kUsage;
}
