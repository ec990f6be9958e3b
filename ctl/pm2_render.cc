// RenderShell and RenderKubernetes of pm2_translate.h.
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/json.h"
#include "ctl/pm2_translate.h"

namespace corral::ctl {
namespace {

// The Kubernetes numbers, as deploy/k8s/base uses them
// (docs/kubernetes.md, "Termination timeline").
constexpr int kProbePort = 8081;
constexpr int kPreStopSeconds = 5;
constexpr int kDrainDelaySeconds = 5;  // the agent's default --drain-delay
constexpr int kMarginSeconds = 5;

std::string Header(const AgentPlan& app, absl::string_view file,
                   absl::string_view env_name) {
  return absl::StrCat(
      "# app \"", app.name, "\" from ", file,
      env_name.empty() ? "" : absl::StrCat(" (env_", env_name, ")"), "\n");
}

// A DNS label for the container's name.
std::string ContainerName(absl::string_view name) {
  std::string out;
  for (char c : name) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u)) {
      out.push_back(absl::ascii_tolower(u));
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.size() > 63) out.resize(63);
  return out.empty() ? "app" : out;
}

int CeilSeconds(absl::Duration d) {
  return static_cast<int>(std::ceil(absl::ToDoubleSeconds(d)));
}

void AppendProbe(std::string& out, const char* kind, const char* service,
                 int period, int failures, const char* why) {
  absl::StrAppend(&out, "    ", kind, ":  # ", why, "\n",
                  "      grpc: {port: ", kProbePort, ", service: ", service,
                  "}\n", "      periodSeconds: ", period, "\n",
                  "      failureThreshold: ", failures, "\n");
}

}  // namespace

std::string ShellQuote(absl::string_view word) {
  if (!word.empty() &&
      word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
                             "WXYZ0123456789_@%+=:,./-") ==
          absl::string_view::npos) {
    return std::string(word);
  }
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  out += "'";
  return out;
}

std::string RenderShell(const Translation& t, absl::string_view file,
                        absl::string_view env_name) {
  std::string out;
  for (const AgentPlan& app : t.apps) {
    if (!out.empty()) out += "\n";
    out += Header(app, file, env_name);
    absl::StrAppend(&out, "cd ", ShellQuote(app.cwd), " && env \\\n");
    for (const auto& [name, value] : app.env) {
      absl::StrAppend(&out, "  ", name, "=", ShellQuote(value), " \\\n");
    }
    out += "  corral-agent \\\n";
    for (const std::string& flag : app.flags) {
      absl::StrAppend(&out, "    ", ShellQuote(flag), " \\\n");
    }
    out += "    --";
    for (const std::string& word : app.command) {
      absl::StrAppend(&out, " ", ShellQuote(word));
    }
    out += "\n";
  }
  return out;
}

std::string RenderKubernetes(const Translation& t, absl::string_view file,
                             absl::string_view env_name) {
  std::string out;
  for (const AgentPlan& app : t.apps) {
    if (!out.empty()) out += "---\n";
    out += Header(app, file, env_name);
    out +=
        "# The pod spec of its own Deployment: one agent per container, "
        "PID 1.\n"
        "# image: your app's image with corral-agent (docs/your-app.md).\n";
    const int stop = CeilSeconds(app.stop_timeout);
    absl::StrAppend(
        &out, "terminationGracePeriodSeconds: ",
        kPreStopSeconds + kDrainDelaySeconds + stop + kMarginSeconds,
        "  # preStop ", kPreStopSeconds, "s + --drain-delay ",
        kDrainDelaySeconds, "s + --stop-timeout ",
        absl::FormatDuration(app.stop_timeout), " + ", kMarginSeconds,
        "s margin\n");
    absl::StrAppend(&out, "containers:\n  - name: ", ContainerName(app.name),
                    "\n    image: IMAGE\n");
    if (app.cwd_given) {
      absl::StrAppend(&out, "    workingDir: ", common::JsonQuote(app.cwd),
                      "\n");
    }
    out += "    command: [\"corral-agent\"]\n    args:\n";
    for (const std::string& flag : app.flags) {
      absl::StrAppend(&out, "      - ", common::JsonQuote(flag), "\n");
    }
    absl::StrAppend(&out, "      - \"--probe-port=", kProbePort, "\"\n");
    out += "      - \"--\"\n";
    for (const std::string& word : app.command) {
      absl::StrAppend(&out, "      - ", common::JsonQuote(word), "\n");
    }
    if (!app.env.empty()) out += "    env:\n";
    for (const auto& [name, value] : app.env) {
      absl::StrAppend(&out, "      - name: ", name,
                      "\n        value: ", common::JsonQuote(value), "\n");
    }
    absl::StrAppend(
        &out, "    ports:\n      - {name: http, containerPort: ", app.port,
        "}\n      - {name: probe, containerPort: ", kProbePort, "}\n");
    // Started = READY workers; longer than --ready-timeout, so a worker
    // that times out once is replaced before the kubelet gives up.
    const int startup = CeilSeconds(app.ready_timeout) / 2 + 15;
    AppendProbe(out, "startupProbe", "readiness", 2, startup,
                "READY workers, for longer than --ready-timeout");
    AppendProbe(out, "readinessProbe", "readiness", 2, 2,
                "not draining, and READY workers");
    AppendProbe(out, "livenessProbe", "liveness", 10, 3,
                "the agent's loop only, never the workers");
    absl::StrAppend(&out,
                    "    lifecycle:  # endpoints drop the pod before the "
                    "agent drains\n      preStop: {sleep: {seconds: ",
                    kPreStopSeconds, "}}\n");
  }
  return out;
}

std::string RenderJson(const Translation& t) {
  std::string out = "{\"apps\":[";
  for (size_t i = 0; i < t.apps.size(); ++i) {
    const AgentPlan& app = t.apps[i];
    common::JsonMembers env;
    for (const auto& [name, value] : app.env) {
      env.push_back({name, common::JsonQuote(value)});
    }
    std::string args = "[";
    auto add = [&args](absl::string_view word) {
      if (args.size() > 1) args += ",";
      args += common::JsonQuote(word);
    };
    for (const std::string& flag : app.flags) add(flag);
    add("--");
    for (const std::string& word : app.command) add(word);
    args += "]";
    absl::StrAppend(&out, i == 0 ? "" : ",",
                    common::WriteJsonObject({
                        {"name", common::JsonQuote(app.name)},
                        {"cwd", common::JsonQuote(app.cwd)},
                        {"env", common::WriteJsonObject(env)},
                        {"args", args},
                    }));
  }
  out += "]}\n";
  return out;
}

}  // namespace corral::ctl
