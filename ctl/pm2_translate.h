// corralctl pm2-import: a PM2 ecosystem file (as JSON) turned into the
// corral-agent command line, the worker environment and notes on what has
// no equivalent. Pure functions: no files, no processes (pm2_import.cc reads
// the file and runs node).
#ifndef CORRAL_CTL_PM2_TRANSLATE_H_
#define CORRAL_CTL_PM2_TRANSLATE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace corral::ctl {

struct TranslateOptions {
  // PM2's `--env NAME`: env_NAME is merged over env. "" = env only.
  std::string env_name;
  // The agent's --listen port; 0 = the app's PORT variable, else 3000.
  int port = 0;
  // Only this app ("" = all).
  std::string app;
  // The ecosystem file's folder (absolute): PM2's cwd when an app has none.
  std::string file_dir;
};

// One app as one agent.
struct AgentPlan {
  std::string name;
  // The agent's flags, in the order printed.
  std::vector<std::string> flags;
  // COMMAND [ARGS...] after "--".
  std::vector<std::string> command;
  // The worker environment, in file order (env, then env_NAME's new keys).
  std::vector<std::pair<std::string, std::string>> env;
  // Where PM2 would run the app (absolute), and whether the file said so.
  std::string cwd;
  bool cwd_given = false;
  int port = 3000;
  // What the Kubernetes snippet's grace period and probes follow.
  absl::Duration stop_timeout = absl::Seconds(20);
  absl::Duration ready_timeout = absl::Seconds(60);
};

struct Translation {
  std::vector<AgentPlan> apps;
  // One line each for stderr: what has no equivalent, and what changed.
  std::vector<std::string> notes;
};

// `json` is the ecosystem as JSON: {apps: [...]}, an array of apps or one
// app. Errors (InvalidArgument) name the app, the key and the value.
absl::StatusOr<Translation> TranslateEcosystem(absl::string_view json,
                                               const TranslateOptions& options);

// The shell form: per app a comment, `cd DIR &&`, `env NAME=VALUE ...` and
// the agent's command line.
std::string RenderShell(const Translation& t, absl::string_view file,
                        absl::string_view env_name);

// A Kubernetes pod spec fragment per app (YAML documents): the container
// with command, args, env, ports, probes, preStop, and the pod's
// terminationGracePeriodSeconds.
std::string RenderKubernetes(const Translation& t, absl::string_view file,
                             absl::string_view env_name);

// {"apps":[{"name","cwd","env":{...},"args":[flags..., "--", command...]}]}
// for tools and tests.
std::string RenderJson(const Translation& t);

// `word` quoted for sh when it needs it.
std::string ShellQuote(absl::string_view word);

}  // namespace corral::ctl

#endif  // CORRAL_CTL_PM2_TRANSLATE_H_
