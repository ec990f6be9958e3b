#include "ctl/pm2_translate.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/duration.h"
#include "common/json.h"
#include "ctl/pm2_values.h"

namespace corral::ctl {
namespace {

using common::JsonMembers;

// PM2's interpreter by extension; anything else runs with node, but for a
// program PM2 finds in $PATH, which it runs itself (none).
std::string InterpreterFor(absl::string_view script) {
  for (absl::string_view program : {"npm", "npx", "yarn", "pnpm", "bun"}) {
    if (script == program) return "none";
  }
  static const std::map<std::string, std::string> kByExtension = {
      {".sh", "bash"},    {".py", "python"},   {".rb", "ruby"},
      {".php", "php"},    {".pl", "perl"},     {".coffee", "coffee"},
      {".ts", "ts-node"}, {".tsx", "ts-node"},
  };
  const size_t dot = script.rfind('.');
  const size_t slash = script.rfind('/');
  if (dot != absl::string_view::npos &&
      (slash == absl::string_view::npos || dot > slash)) {
    auto it = kByExtension.find(std::string(script.substr(dot)));
    if (it != kByExtension.end()) return it->second;
  }
  return "node";
}

bool IsNode(absl::string_view interpreter) {
  const size_t slash = interpreter.rfind('/');
  absl::string_view base = slash == absl::string_view::npos
                               ? interpreter
                               : interpreter.substr(slash + 1);
  return base == "node" || base == "nodejs";
}

std::string Join(absl::string_view dir, absl::string_view path) {
  if (absl::StartsWith(path, "/") || dir.empty()) return std::string(path);
  std::string out(dir);
  if (!absl::EndsWith(out, "/")) out += "/";
  absl::string_view rest = path;
  while (absl::ConsumePrefix(&rest, "./")) {
  }
  if (rest == ".") return std::string(dir);
  return out + std::string(rest);
}

// A duration the agent reads back: "1.6s", "20s".
std::string Flag(absl::string_view name, absl::Duration d) {
  return absl::StrCat("--", name, "=", common::DurationToString(d));
}

class AppTranslator {
 public:
  AppTranslator(const JsonMembers& app, const TranslateOptions& options,
                std::vector<std::string>* notes)
      : app_(app), options_(options), notes_(notes) {}

  absl::StatusOr<AgentPlan> Run();

 private:
  const std::string* Raw(absl::string_view key) const {
    const common::JsonMember* m = common::FindMember(app_, key);
    return m == nullptr ? nullptr : &m->value;
  }
  void Note(absl::string_view key, absl::string_view text) {
    notes_->push_back(absl::StrCat(plan_.name, ": ", key, ": ", text));
  }
  absl::Status Bad(absl::string_view key, absl::string_view raw,
                   absl::string_view expected) const {
    return BadValue(plan_.name, key, raw, expected);
  }

  absl::Status Name();
  absl::Status Command();
  absl::Status Environment();
  absl::Status Workers();
  absl::Status Lifecycle();
  absl::Status Restarts();
  absl::Status InstanceVariables();
  void Others();

  const JsonMembers& app_;
  const TranslateOptions& options_;
  std::vector<std::string>* notes_;
  AgentPlan plan_;
  std::string interpreter_;
  bool node_ = false;
  bool wait_ready_ = false;
  std::optional<absl::Duration> kill_timeout_;
};

absl::Status AppTranslator::Name() {
  const std::string* script = Raw("script");
  if (script == nullptr) {
    return absl::InvalidArgumentError(
        "an app has no `script` (PM2 needs one too)");
  }
  std::optional<std::string> s = common::JsonString(*script);
  if (!s || s->empty()) {
    return BadValue("(unnamed)", "script", *script, "a file name");
  }
  if (const std::string* name = Raw("name"); name != nullptr) {
    std::optional<std::string> n = AsText(*name);
    if (!n) return BadValue("(unnamed)", "name", *name, "a string");
    plan_.name = *n;
  } else {
    // PM2's default: the script's file name without its extension.
    absl::string_view base = *s;
    if (size_t slash = base.rfind('/'); slash != absl::string_view::npos) {
      base.remove_prefix(slash + 1);
    }
    if (size_t dot = base.rfind('.');
        dot != 0 && dot != absl::string_view::npos) {
      base = base.substr(0, dot);
    }
    plan_.name = std::string(base);
  }
  return absl::OkStatus();
}

absl::Status AppTranslator::Command() {
  const std::string script = *common::JsonString(*Raw("script"));
  const std::string* interp = Raw("interpreter");
  if (interp == nullptr) interp = Raw("exec_interpreter");
  if (interp != nullptr) {
    std::optional<std::string> i = common::JsonString(*interp);
    if (!i || i->empty()) return Bad("interpreter", *interp, "a program name");
    interpreter_ = *i;
  } else {
    interpreter_ = InterpreterFor(script);
  }
  node_ = IsNode(interpreter_);
  const std::string* node_args = Raw("node_args");
  const char* node_args_key = "node_args";
  if (node_args == nullptr) {
    node_args = Raw("interpreter_args");
    node_args_key = "interpreter_args";
  }
  std::vector<std::string> interpreter_args;
  if (node_args != nullptr) {
    absl::StatusOr<std::vector<std::string>> a =
        AsArgs(plan_.name, node_args_key, *node_args);
    if (!a.ok()) return a.status();
    interpreter_args = *a;
  }
  if (const std::string* sms = Raw("source_map_support");
      sms != nullptr && *sms == "true" && node_) {
    interpreter_args.push_back("--enable-source-maps");
    Note("source_map_support", "node's own --enable-source-maps instead");
  }
  if (interpreter_ != "none") {
    plan_.command.push_back(interpreter_);
    for (std::string& a : interpreter_args) plan_.command.push_back(a);
  } else if (!interpreter_args.empty()) {
    Note(node_args_key, "ignored: interpreter is none");
  }
  plan_.command.push_back(script);
  if (const std::string* args = Raw("args"); args != nullptr) {
    absl::StatusOr<std::vector<std::string>> a =
        AsArgs(plan_.name, "args", *args);
    if (!a.ok()) return a.status();
    for (std::string& w : *a) plan_.command.push_back(w);
  }
  if (script == "npm" || script == "yarn" || script == "pnpm") {
    Note("script",
         absl::StrCat("run node directly, not through ", script,
                      ": a package manager in between takes the IPC "
                      "channel and the stop signal meant for the app"));
  }
  if (!node_) {
    Note("interpreter",
         absl::StrCat(
             interpreter_,
             ": the register module is for Node only; the app must listen "
             "on the agent's socket itself (fd 3, LISTEN_FDS) or it binds "
             "its own port; READY 1s after start (--ready=delay:1s, PM2 "
             "counts it online at once), or --ready=notify if it speaks "
             "sd_notify (docs/agent-contract.md)"));
  }
  return absl::OkStatus();
}

absl::Status AppTranslator::Environment() {
  const std::string* cwd = Raw("cwd");
  plan_.cwd = options_.file_dir;
  if (cwd != nullptr) {
    std::optional<std::string> c = common::JsonString(*cwd);
    if (!c) return Bad("cwd", *cwd, "a folder");
    plan_.cwd = Join(options_.file_dir, *c);
    plan_.cwd_given = true;
  }
  std::vector<std::pair<std::string, std::string>> env;
  absl::Status s = MergeEnv(plan_.name, "env", Raw("env"), env, *notes_);
  if (!s.ok()) return s;
  if (!options_.env_name.empty()) {
    const std::string key = absl::StrCat("env_", options_.env_name);
    const std::string* chosen = Raw(key);
    if (chosen == nullptr) {
      Note(key, "not in this app: only env applies");
    } else if (s = MergeEnv(plan_.name, key, chosen, env, *notes_); !s.ok()) {
      return s;
    }
  }
  plan_.env = std::move(env);
  return absl::OkStatus();
}

absl::Status AppTranslator::Workers() {
  std::string mode = "fork";
  if (const std::string* m = Raw("exec_mode"); m != nullptr) {
    std::optional<std::string> v = common::JsonString(*m);
    if (v && (*v == "cluster" || *v == "cluster_mode")) {
      mode = "cluster";
    } else if (!v || (*v != "fork" && *v != "fork_mode")) {
      return Bad("exec_mode", *m, "\"cluster\" or \"fork\"");
    }
  }
  std::string workers = "1";
  if (const std::string* i = Raw("instances"); i != nullptr) {
    std::optional<std::string> text = AsText(*i);
    int n = 0;
    if (text && (*text == "max" || *text == "0")) {
      workers = "auto";
    } else if (text && absl::SimpleAtoi(*text, &n) && n < 0) {
      workers = "auto";
      Note("instances",
           absl::StrCat(n, " (all CPUs but ", -n,
                        ") has no equivalent: --workers=auto runs one per "
                        "CPU of the container's limit; lower the limit, or "
                        "give --workers=N or --max-workers=N"));
    } else if (text && absl::SimpleAtoi(*text, &n) && n > 0) {
      workers = absl::StrCat(n);
    } else {
      return Bad("instances", *i, "a number, \"max\" or -1");
    }
  }
  if (mode == "fork" && workers != "1") {
    Note("exec_mode",
         "fork with several instances: corral's workers always share the "
         "agent's socket, as in PM2's cluster mode");
  }
  plan_.flags.push_back(absl::StrCat("--workers=", workers));
  int port = options_.port;
  if (port == 0) {
    for (const auto& [k, v] : plan_.env) {
      if (k == "PORT" &&
          (!absl::SimpleAtoi(v, &port) || port <= 0 || port > 65535)) {
        port = 0;
      }
    }
  }
  if (port == 0) {
    port = 3000;
    Note("port",
         "no PORT in the app's environment: the agent listens on 3000 (give "
         "pm2-import --port=N); the app's first listen(port) takes that "
         "socket whatever port it asks for");
  }
  plan_.port = port;
  plan_.flags.push_back(absl::StrCat("--listen=tcp://0.0.0.0:", port));
  return absl::OkStatus();
}

absl::Status AppTranslator::Lifecycle() {
  if (const std::string* w = Raw("wait_ready"); w != nullptr) {
    wait_ready_ = Truthy(*w);
  }
  if (node_) {
    plan_.flags.push_back("--ready=ipc");
    plan_.flags.push_back("--node-register");
    if (wait_ready_) plan_.env.emplace_back("CORRAL_WAIT_READY", "1");
  } else {
    plan_.flags.push_back("--ready=delay:1s");
    if (wait_ready_) {
      Note("wait_ready", "process.send('ready') is Node's: not for this app");
    }
  }
  for (const char* key : {"listen_timeout", "kill_timeout"}) {
    const std::string* raw = Raw(key);
    if (raw == nullptr) continue;
    absl::StatusOr<absl::Duration> d = AsMilliseconds(plan_.name, key, *raw);
    if (!d.ok()) return d.status();
    if (*d <= absl::ZeroDuration()) return Bad(key, *raw, "a time above 0");
    if (absl::string_view(key) == "listen_timeout") {
      plan_.ready_timeout = *d;
      plan_.flags.push_back(Flag("ready-timeout", *d));
    } else {
      kill_timeout_ = plan_.stop_timeout = *d;
      plan_.flags.push_back(Flag("stop-timeout", *d));
    }
  }
  std::string signal = "SIGINT";  // PM2's default
  if (const std::string* k = Raw("kill_signal"); k != nullptr) {
    std::optional<std::string> s = common::JsonString(*k);
    if (!s || s->empty()) return Bad("kill_signal", *k, "a signal name");
    signal = absl::AsciiStrToUpper(*s);
    if (!absl::StartsWith(signal, "SIG")) signal = "SIG" + signal;
  } else {
    Note("kill_signal",
         "unset: --stop-signal=SIGINT, PM2's default (corral-agent's own is "
         "SIGTERM; the register module drains on either)");
  }
  plan_.flags.push_back(absl::StrCat("--stop-signal=", signal));
  if (const std::string* m = Raw("max_memory_restart"); m != nullptr) {
    absl::StatusOr<std::string> size = AsPm2Size(plan_.name, *m);
    if (!size.ok()) return size.status();
    plan_.flags.push_back(absl::StrCat("--max-worker-memory=", *size));
  }
  if (const std::string* t = Raw("log_type"); t != nullptr) {
    if (common::JsonString(*t) == "json") {
      plan_.flags.push_back("--log-format=json");
    }
  }
  if (node_ && kill_timeout_) {
    // The register module's drain must end before the agent's SIGKILL.
    const absl::Duration margin =
        std::min(absl::Seconds(1), *kill_timeout_ / 4);
    plan_.env.emplace_back(
        "CORRAL_DRAIN_TIMEOUT",
        common::DurationToString(
            absl::Floor(*kill_timeout_ - margin, absl::Milliseconds(100))));
  }
  return absl::OkStatus();
}

absl::Status AppTranslator::Restarts() {
  const std::string* exp = Raw("exp_backoff_restart_delay");
  const std::string* fixed = Raw("restart_delay");
  const char* key =
      exp != nullptr ? "exp_backoff_restart_delay" : "restart_delay";
  const std::string* raw = exp != nullptr ? exp : fixed;
  if (raw == nullptr) return absl::OkStatus();
  absl::StatusOr<absl::Duration> d = AsMilliseconds(plan_.name, key, *raw);
  if (!d.ok()) return d.status();
  if (*d <= absl::ZeroDuration()) return absl::OkStatus();
  // PM2's exponential delay grows to 15 s; a fixed one stays put.
  const absl::Duration max =
      exp != nullptr ? std::max(*d, absl::Seconds(15)) : *d;
  plan_.flags.push_back(
      absl::StrCat("--restart-backoff=", common::DurationToString(*d), ",",
                   common::DurationToString(max)));
  Note(key,
       "the first restart of a crash loop is at once, then the backoff "
       "doubles with +-20% jitter (docs/restart-policy.md)");
  if (exp != nullptr && fixed != nullptr) {
    Note("restart_delay", "ignored: exp_backoff_restart_delay is set");
  }
  return absl::OkStatus();
}

absl::Status AppTranslator::InstanceVariables() {
  std::vector<std::string> exports;
  if (const std::string* v = Raw("instance_var"); v != nullptr) {
    std::optional<std::string> name = common::JsonString(*v);
    if (!name || !IsVariableName(*name)) {
      return Bad("instance_var", *v, "a variable name");
    }
    if (*name != "NODE_APP_INSTANCE") {
      exports.push_back(absl::StrCat(*name, "=\"$CORRAL_WORKER_ID\""));
    }
  }
  if (const std::string* v = Raw("increment_var"); v != nullptr) {
    std::optional<std::string> name = common::JsonString(*v);
    if (!name || !IsVariableName(*name)) {
      return Bad("increment_var", *v, "a variable name");
    }
    int64_t base = 0;
    for (const auto& [k, value] : plan_.env) {
      if (k == *name && !absl::SimpleAtoi(value, &base)) {
        return Bad(
            "increment_var", *v,
            absl::StrCat("a variable holding a number (", k, "=", value, ")"));
      }
    }
    exports.push_back(
        absl::StrCat(*name, "=$((", base, " + CORRAL_WORKER_ID))"));
    if (*name == "PORT") {
      Note("increment_var",
           "PORT: not needed: every worker shares the agent's socket (the "
           "register module gives it to the first listen(port) whatever the "
           "port)");
    }
  }
  if (exports.empty()) return absl::OkStatus();
  // The worker's slot reaches the variable through a shell that then execs
  // the app (so the app is still the worker, signals and all).
  std::string script = "export";
  for (const std::string& e : exports) absl::StrAppend(&script, " ", e);
  absl::StrAppend(&script, "; exec \"$@\"");
  plan_.command.insert(plan_.command.begin(), {"sh", "-c", script, "sh"});
  return absl::OkStatus();
}

void AppTranslator::Others() {
  for (const common::JsonMember& m : app_) {
    if (absl::StartsWith(m.name, "env_")) continue;
    std::optional<std::string> note = NoEquivalentNote(m.name);
    if (!note) {
      Note(m.name, "not a PM2 option pm2-import knows: ignored");
      continue;
    }
    // autorestart, autostart and treekill matter only when false.
    const bool when_false = m.name == "autorestart" || m.name == "autostart" ||
                            m.name == "treekill";
    if (!note->empty() && Truthy(m.value) != when_false) Note(m.name, *note);
  }
}

absl::StatusOr<AgentPlan> AppTranslator::Run() {
  // In order, each step only after the ones before it succeeded (later
  // steps read what earlier ones checked).
  using Step = absl::Status (AppTranslator::*)();
  for (Step step : {&AppTranslator::Name, &AppTranslator::Command,
                    &AppTranslator::Environment, &AppTranslator::Workers,
                    &AppTranslator::Lifecycle, &AppTranslator::Restarts,
                    &AppTranslator::InstanceVariables}) {
    if (absl::Status s = (this->*step)(); !s.ok()) return s;
  }
  Others();
  return std::move(plan_);
}

}  // namespace

absl::StatusOr<Translation> TranslateEcosystem(
    absl::string_view json, const TranslateOptions& options) {
  absl::StatusOr<std::vector<JsonMembers>> apps = EcosystemApps(json);
  if (!apps.ok()) return apps.status();
  Translation t;
  if (absl::StatusOr<JsonMembers> top = common::ParseJsonObject(json);
      top.ok() && common::FindMember(*top, "deploy") != nullptr) {
    t.notes.push_back(
        "deploy: no equivalent: PM2 deploy (ssh, git pull, post-deploy "
        "hooks) is replaced by an image built in CI and rolled out by "
        "Kubernetes");
  }
  std::vector<std::string> names;
  for (const JsonMembers& app : *apps) {
    std::vector<std::string> notes;
    absl::StatusOr<AgentPlan> plan = AppTranslator(app, options, &notes).Run();
    if (!plan.ok()) return plan.status();
    names.push_back(plan->name);
    if (!options.app.empty() && plan->name != options.app) continue;
    t.notes.insert(t.notes.end(), notes.begin(), notes.end());
    t.apps.push_back(*std::move(plan));
  }
  if (t.apps.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no app named '", options.app,
                     "' (the apps: ", absl::StrJoin(names, ", "), ")"));
  }
  if (t.apps.size() > 1) {
    t.notes.push_back(absl::StrCat(
        t.apps.size(),
        " apps: corral runs one app per agent, so each gets its own "
        "container (best its own Deployment, to scale and roll it alone); "
        "give one with --app=NAME"));
  }
  return t;
}

}  // namespace corral::ctl
