#include "ctl/pm2_import.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json.h"
#include "ctl/client.h"
#include "ctl/pm2_translate.h"
#include "ctl/render.h"

extern char** environ;

namespace corral::ctl {
namespace {

// Run by `node -e`: loads the ecosystem file as PM2 does (require, or
// import() for ES modules) and prints {"ok": config, "dropped": [keys of
// functions]} or {"error": "..."} on the real stdout. The file's own output
// goes to stderr so it cannot corrupt the JSON.
constexpr char kLoader[] = R"JS(
'use strict';
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const out = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);
const file = path.resolve(process.argv[1]);
const dropped = [];
const plain = (key, value) => {
  if (typeof value === 'function') { dropped.push(key); return undefined; }
  if (typeof value === 'bigint') return Number(value);
  return value;
};
const done = (result, code) => { out(JSON.stringify(result) + '\n', () => process.exit(code)); };
(async () => {
  let conf;
  try {
    conf = require(file);
  } catch (e) {
    if (!e || e.code !== 'ERR_REQUIRE_ESM') throw e;
    conf = await import(pathToFileURL(file).href);
  }
  if (conf && typeof conf === 'object' && 'default' in conf &&
      (conf.__esModule || Object.prototype.toString.call(conf) === '[object Module]')) {
    conf = conf.default;
  }
  conf = await conf;
  done({ ok: JSON.parse(JSON.stringify(conf === undefined ? null : conf, plain)), dropped }, 0);
})().catch((e) => {
  const stack = e && typeof e.stack === 'string' ? e.stack : '';
  // A syntax error starts its stack with "file:line"; a throw names the
  // file in a frame, "(file:line:column)".
  const first = /^(\/[^\n]*):(\d+)\n/.exec(stack);
  const frame = first ? null : stack.split(file + ':')[1];
  const line = first ? first[2] : frame && /^(\d+)/.exec(frame);
  const where = first ? first[1] : file;
  const what = e instanceof Error ? `${e.name}: ${e.message}` : `thrown: ${String(e)}`;
  const n = first ? line : line && line[1];
  // The file itself is named by corralctl; a module it requires is not.
  const at = !n ? '' : where === file ? `line ${n}: ` : `${where}:${n}: `;
  done({ error: at + what }, 1);
});
)JS";

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", path, ": ", strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Reads `fd` until EOF or `deadline`; false on timeout.
bool ReadAll(int fd, std::chrono::steady_clock::time_point deadline,
             std::string& out) {
  char buf[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    out.append(buf, static_cast<size_t>(n));
  }
}

// The config the JavaScript file evaluates to, as JSON, from `node`.
absl::StatusOr<std::string> Evaluate(const Pm2ImportArgs& args,
                                     const std::string& path,
                                     std::vector<std::string>& dropped) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  std::vector<std::string> argv_s = {args.node, "-e", kLoader, path};
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int err = posix_spawnp(&pid, args.node.c_str(), &actions, nullptr,
                               argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (err != 0) {
    close(pipe_fds[0]);
    return absl::FailedPreconditionError(
        absl::StrCat("a JavaScript file needs node to be read, and '",
                     args.node, "' cannot run: ", strerror(err),
                     " (give --node=PATH, or convert the file to JSON)"));
  }
  std::string output;
  const bool finished =
      ReadAll(pipe_fds[0],
              std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(
                      static_cast<int64_t>(args.timeout_seconds * 1000)),
              output);
  close(pipe_fds[0]);
  if (!finished) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!finished) {
    return absl::DeadlineExceededError(absl::StrCat(
        "node did not finish evaluating it within ", args.timeout_seconds,
        "s (does the file start a server or wait for something?)"));
  }
  absl::StatusOr<common::JsonMembers> result = common::ParseJsonObject(output);
  if (!result.ok()) {
    return absl::InternalError(absl::StrCat("node exited with status ",
                                            WEXITSTATUS(status),
                                            " without printing the config"));
  }
  if (const common::JsonMember* e = common::FindMember(*result, "error")) {
    return absl::InvalidArgumentError(
        common::JsonString(e->value).value_or(e->value));
  }
  if (const common::JsonMember* d = common::FindMember(*result, "dropped")) {
    absl::StatusOr<std::vector<std::string>> keys =
        common::ParseJsonArray(d->value);
    if (keys.ok()) {
      for (const std::string& k : *keys) {
        dropped.push_back(common::JsonString(k).value_or(k));
      }
    }
  }
  const common::JsonMember* ok = common::FindMember(*result, "ok");
  if (ok == nullptr) return absl::InternalError("node printed no config");
  return ok->value;
}

absl::StatusOr<std::string> Load(const Pm2ImportArgs& args,
                                 const std::string& path,
                                 std::vector<std::string>& dropped) {
  if (absl::EndsWith(path, ".yml") || absl::EndsWith(path, ".yaml")) {
    return absl::InvalidArgumentError(
        "YAML ecosystem files are not read: convert it to JSON or to "
        "ecosystem.config.js");
  }
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError("no such file");
  }
  if (!absl::EndsWith(path, ".json")) return Evaluate(args, path, dropped);
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  if (!common::IsJsonValue(*text)) {
    return absl::InvalidArgumentError(
        "not valid JSON (comments and trailing commas are JavaScript: PM2 "
        "evaluates .json files as code; rename it to .config.js to have it "
        "evaluated by node)");
  }
  return text;
}

void Note(const std::string& text) {
  std::fprintf(stderr, "corralctl pm2-import: %s\n", text.c_str());
}

}  // namespace

int Pm2Import(const Pm2ImportArgs& args) {
  if (args.format != "shell" && args.format != "k8s" && args.format != "json") {
    return Complain(kUsage, absl::StrCat("pm2-import: -o '", args.format,
                                         "': give shell, k8s or json"));
  }
  std::error_code ec;
  const std::filesystem::path path =
      std::filesystem::absolute(args.file, ec).lexically_normal();
  std::vector<std::string> dropped;
  absl::StatusOr<std::string> json = Load(args, path.string(), dropped);
  if (!json.ok()) {
    return Complain(kFailed, absl::StrCat("pm2-import: ", args.file, ": ",
                                          json.status().message()));
  }
  TranslateOptions options;
  options.env_name = args.env;
  options.port = args.port;
  options.app = args.app;
  options.file_dir = path.parent_path().string();
  absl::StatusOr<Translation> t = TranslateEcosystem(*json, options);
  if (!t.ok()) {
    return Complain(kFailed, absl::StrCat("pm2-import: ", args.file, ": ",
                                          t.status().message()));
  }
  for (const std::string& key : dropped) {
    Note(absl::StrCat(key, ": a function: left out (only values translate)"));
  }
  for (const std::string& note : t->notes) Note(note);
  if (args.format == "json") {
    Print(RenderJson(*t));
  } else if (args.format == "k8s") {
    Print(RenderKubernetes(*t, args.file, args.env));
  } else {
    Print(RenderShell(*t, args.file, args.env));
  }
  return kOk;
}

}  // namespace corral::ctl
