#include "ctl/pm2_values.h"

#include <cmath>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/duration.h"
#include "common/size.h"

namespace corral::ctl {
namespace {

using common::JsonMembers;

// Keys with no corral equivalent, or nothing to do under corral: the note
// printed when the app sets them (to anything truthy).
struct NoEquivalent {
  const char* key;
  const char* note;
};
constexpr NoEquivalent kNoEquivalent[] = {
    {"watch",
     "no equivalent: files in an image do not change in place; rebuild the "
     "image and roll it out (`corralctl reload` restarts workers on new files "
     "in place); for development run `node --watch` without corral"},
    {"ignore_watch", "ignored (watch mode has no equivalent)"},
    {"watch_options", "ignored (watch mode has no equivalent)"},
    {"cron_restart",
     "no equivalent: run `corralctl reload` from a Kubernetes CronJob (or "
     "`kubectl rollout restart`) on that schedule"},
    {"autorestart",
     "no equivalent for false: the agent always restarts a worker that exits; "
     "for a run-once task use a Kubernetes Job"},
    {"autostart", "no equivalent for false: the agent starts its command"},
    {"max_restarts",
     "no equivalent: the agent never gives up on an app that has once been "
     "READY (crash loops back off up to --restart-backoff's MAX); one that "
     "never gets READY makes the agent exit 1 (gave_up) so Kubernetes "
     "restarts the pod"},
    {"min_uptime",
     "fixed at 1s in corral: a worker READY for less counts as a crash "
     "(docs/restart-policy.md)"},
    {"stop_exit_codes",
     "no equivalent: every exit the agent did not ask for is restarted"},
    {"out_file",
     "logs go to stdout: the agent tags each worker line (corralctl logs, "
     "kubectl logs); no log files are written"},
    {"error_file", "logs go to stdout (see out_file)"},
    {"log_file", "logs go to stdout (see out_file)"},
    {"output", "logs go to stdout (see out_file)"},
    {"error", "logs go to stdout (see out_file)"},
    {"log", "logs go to stdout (see out_file)"},
    {"merge_logs", "nothing to do: the agent's stdout is one stream already"},
    {"combine_logs", "nothing to do: the agent's stdout is one stream already"},
    {"time",
     "no prefix is added to worker lines: --log-format=json gives every line "
     "a `ts`, and `kubectl logs --timestamps` adds the runtime's"},
    {"log_date_format", "ignored (see time)"},
    {"disable_logs", "no equivalent: the agent forwards every worker line"},
    {"pid_file", "no pid files: `corralctl ps` lists the workers' pids"},
    {"uid",
     "no equivalent: run the container as that user (USER in the "
     "Dockerfile, securityContext.runAsUser)"},
    {"gid", "no equivalent: securityContext.runAsGroup"},
    {"user", "no equivalent (see uid)"},
    {"shutdown_with_message",
     "no equivalent: workers get --stop-signal; the register module drains "
     "on SIGTERM and SIGINT"},
    {"treekill",
     "always on in corral: stop signals go to the worker's process group"},
    {"filter_env",
     "no equivalent: workers get the agent's whole environment; give the "
     "container only what the app needs"},
    {"pmx",
     "PM2's Keymetrics probe: no equivalent (--http-port serves "
     "Prometheus /metrics)"},
    {"automation", "PM2's Keymetrics integration: no equivalent"},
    {"trace", "PM2's Keymetrics tracing: no equivalent"},
    {"disable_trace", "ignored (PM2's Keymetrics tracing)"},
    {"deep_monitoring", "PM2's Keymetrics integration: no equivalent"},
    {"vizion", "ignored (PM2's git metadata)"},
    {"post_update", "ignored (PM2's git pull hook)"},
    {"force", "ignored (PM2 only)"},
    {"namespace", "ignored (PM2 only)"},
    {"append_env_to_name", "ignored (PM2 only)"},
    {"windowsHide", "ignored (Windows only)"},
    {"kill_retry_time",
     "ignored: the agent sends SIGKILL once, at "
     "--stop-timeout"},
    {"version", "ignored (PM2 metadata)"},
    {"node_version", "ignored: the image decides which Node runs"},
    {"disable_source_map_support",
     "nothing to do: corral adds no source "
     "map support"},
};

// Keys read by the translation itself.
constexpr const char* kHandled[] = {
    "name",
    "script",
    "args",
    "interpreter",
    "exec_interpreter",
    "node_args",
    "interpreter_args",
    "cwd",
    "instances",
    "exec_mode",
    "env",
    "wait_ready",
    "listen_timeout",
    "kill_timeout",
    "kill_signal",
    "max_memory_restart",
    "restart_delay",
    "exp_backoff_restart_delay",
    "instance_var",
    "increment_var",
    "log_type",
    "source_map_support",
};

char KindOf(absl::string_view raw) {
  for (char c : raw) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return c;
  }
  return '\0';
}

std::string Shown(absl::string_view raw) {
  return raw.size() > 60 ? absl::StrCat(raw.substr(0, 57), "...")
                         : std::string(raw);
}

// A number JavaScript would print without a fraction or exponent.
std::optional<std::string> IntegerText(double v) {
  if (!std::isfinite(v) || std::floor(v) != v || std::fabs(v) > 9e15) {
    return std::nullopt;
  }
  return absl::StrCat(static_cast<int64_t>(v));
}

}  // namespace

absl::StatusOr<std::vector<JsonMembers>> EcosystemApps(absl::string_view json) {
  const char kind = KindOf(json);
  absl::string_view list = json;
  std::string apps_raw;
  if (kind == '{') {
    absl::StatusOr<JsonMembers> top = common::ParseJsonObject(json);
    if (!top.ok()) return top.status();
    const common::JsonMember* apps = common::FindMember(*top, "apps");
    if (apps == nullptr) {
      if (common::FindMember(*top, "script") != nullptr) {
        return std::vector<JsonMembers>{*top};
      }
      return absl::InvalidArgumentError(
          "no apps: expected {apps: [...]}, an array of apps, or one app "
          "with a script");
    }
    apps_raw = apps->value;
    list = apps_raw;
    if (KindOf(list) == '{') {
      absl::StatusOr<JsonMembers> one = common::ParseJsonObject(list);
      if (!one.ok()) return one.status();
      return std::vector<JsonMembers>{*one};
    }
  }
  absl::StatusOr<std::vector<std::string>> items = common::ParseJsonArray(list);
  if (!items.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("apps: ", Shown(list), " is not an array of apps"));
  }
  if (items->empty())
    return absl::InvalidArgumentError("apps: the list is empty");
  std::vector<JsonMembers> out;
  for (const std::string& item : *items) {
    absl::StatusOr<JsonMembers> app = common::ParseJsonObject(item);
    if (!app.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("apps: ", Shown(item), " is not an app (an object)"));
    }
    out.push_back(*std::move(app));
  }
  return out;
}

absl::Status BadValue(absl::string_view app, absl::string_view key,
                      absl::string_view raw, absl::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat(
      "app ", app, ": ", key, ": ", Shown(raw), " is not ", expected));
}

std::optional<std::string> AsText(absl::string_view raw) {
  if (std::optional<std::string> s = common::JsonString(raw)) return s;
  std::optional<double> n = common::JsonNumber(raw);
  if (!n) return std::nullopt;
  if (std::optional<std::string> i = IntegerText(*n)) return i;
  return std::string(absl::StripAsciiWhitespace(raw));
}

bool Truthy(absl::string_view raw) {
  absl::string_view v = absl::StripAsciiWhitespace(raw);
  if (v == "false" || v == "null" || v == "\"\"") return false;
  std::optional<double> n = common::JsonNumber(v);
  return !(n && *n == 0);
}

absl::StatusOr<std::vector<std::string>> AsArgs(absl::string_view app,
                                                absl::string_view key,
                                                absl::string_view raw) {
  std::vector<std::string> out;
  if (KindOf(raw) == '[') {
    absl::StatusOr<std::vector<std::string>> items =
        common::ParseJsonArray(raw);
    if (!items.ok()) return BadValue(app, key, raw, "a list of strings");
    for (const std::string& item : *items) {
      std::optional<std::string> text = AsText(item);
      if (!text) return BadValue(app, key, raw, "a list of strings");
      out.push_back(*text);
    }
    return out;
  }
  std::optional<std::string> text = AsText(raw);
  if (!text) return BadValue(app, key, raw, "a string or a list of strings");
  std::string word;
  bool in_word = false;
  char quote = '\0';
  for (char c : *text) {
    if (quote != '\0') {
      if (c == quote) {
        quote = '\0';
      } else {
        word.push_back(c);
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      if (in_word) out.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word.push_back(c);
      in_word = true;
    }
  }
  if (quote != '\0') return BadValue(app, key, raw, "closed in its quotes");
  if (in_word) out.push_back(std::move(word));
  return out;
}

absl::StatusOr<absl::Duration> AsMilliseconds(absl::string_view app,
                                              absl::string_view key,
                                              absl::string_view raw) {
  if (std::optional<double> n = common::JsonNumber(raw); n && *n >= 0) {
    return absl::Milliseconds(*n);
  }
  std::optional<std::string> s = common::JsonString(raw);
  double ms = 0;
  if (s && absl::SimpleAtod(*s, &ms) && ms >= 0) return absl::Milliseconds(ms);
  if (s) {
    absl::StatusOr<absl::Duration> d = common::ParseDuration(*s);
    if (d.ok()) return *d;
  }
  return BadValue(app, key, raw, "milliseconds (a number) or a duration");
}

absl::StatusOr<std::string> AsPm2Size(absl::string_view app,
                                      absl::string_view raw) {
  std::optional<std::string> text = AsText(raw);
  const absl::Status bad = BadValue(app, "max_memory_restart", raw,
                                    "a size such as 300M, 1G or bytes");
  if (!text || text->empty()) return bad;
  std::string t = absl::AsciiStrToUpper(*text);
  int64_t unit = 1;
  switch (t.back()) {
    case 'K':
      unit = int64_t{1} << 10;
      break;
    case 'M':
      unit = int64_t{1} << 20;
      break;
    case 'G':
      unit = int64_t{1} << 30;
      break;
    default:
      break;
  }
  if (unit != 1) t.pop_back();
  double v = 0;
  if (!absl::SimpleAtod(t, &v) || v <= 0 || v * unit > 9e18) return bad;
  const int64_t bytes = static_cast<int64_t>(std::ceil(v * unit));
  // "150Mi" when exact, else bytes: both read back by ParseSize.
  const std::string size = common::FormatSize(bytes);
  return size.find('.') == std::string::npos ? size : absl::StrCat(bytes);
}

absl::Status MergeEnv(absl::string_view app, absl::string_view key,
                      const std::string* raw,
                      std::vector<std::pair<std::string, std::string>>& env,
                      std::vector<std::string>& notes) {
  if (raw == nullptr) return absl::OkStatus();
  absl::StatusOr<JsonMembers> members = common::ParseJsonObject(*raw);
  if (!members.ok()) return BadValue(app, key, *raw, "an object");
  for (const common::JsonMember& m : *members) {
    std::string value;
    const char kind = KindOf(m.value);
    if (kind == 'n') {
      notes.push_back(
          absl::StrCat(app, ": ", key, ".", m.name, ": null: left out"));
      continue;
    }
    if (kind == '{' || kind == '[') {
      value = m.value;  // PM2 hands objects over as JSON text
    } else if (kind == 't' || kind == 'f') {
      value = std::string(absl::StripAsciiWhitespace(m.value));
    } else {
      std::optional<std::string> text = AsText(m.value);
      if (!text)
        return BadValue(app, absl::StrCat(key, ".", m.name), m.value,
                        "a value");
      value = *text;
    }
    bool replaced = false;
    for (auto& [k, v] : env) {
      if (k == m.name) {
        v = value;
        replaced = true;
      }
    }
    if (!replaced) env.emplace_back(m.name, value);
  }
  return absl::OkStatus();
}

bool IsVariableName(absl::string_view name) {
  if (name.empty() ||
      absl::ascii_isdigit(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

std::optional<std::string> NoEquivalentNote(absl::string_view key) {
  for (const char* k : kHandled) {
    if (key == k) return std::string();
  }
  for (const NoEquivalent& e : kNoEquivalent) {
    if (key == e.key) return std::string(e.note);
  }
  return std::nullopt;
}

}  // namespace corral::ctl
