// corral-worker: the reference worker. An HTTP/1.1 service with Redis
// sessions on the worker SDK; runs under corral-agent (inherited sockets,
// sd_notify) or alone on $PORT.
//
//   corral-worker [--secure-cookie] [--drain-timeout=15s]
//
// Environment: PORT (alone; default 8080), REDIS_URL, REDIS_SENTINELS,
// REDIS_MASTER_NAME, CORRAL_SECURE_COOKIE=1, SESSION_IDLE_TIMEOUT (30m),
// SESSION_ABSOLUTE_TIMEOUT (8h), SESSION_SECRET / SESSION_OLD_SECRETS
// (signed cookies, as express-session), SESSION_FORMAT (corral |
// connect-redis), SESSION_COOKIE_NAME, SESSION_KEY_PREFIX,
// CORRAL_DRAIN_IDLE_WINDOW (1s; see HttpServerOptions::drain_idle_window).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/duration.h"
#include "worker/corral_worker/app.h"
#include "worker/sdk/http_server.h"
#include "worker/sdk/log.h"
#include "worker/sdk/redis_client.h"
#include "worker/sdk/redis_config.h"
#include "worker/sdk/session_store.h"
#include "worker/sdk/worker.h"

namespace {

using namespace corral::worker;

constexpr char kUsage[] =
    "usage: corral-worker [--secure-cookie] [--drain-timeout=DURATION]\n"
    "env: PORT, REDIS_URL, REDIS_SENTINELS, REDIS_MASTER_NAME,\n"
    "     CORRAL_SECURE_COOKIE=1, SESSION_IDLE_TIMEOUT, "
    "SESSION_ABSOLUTE_TIMEOUT,\n"
    "     SESSION_SECRET, SESSION_OLD_SECRETS, SESSION_FORMAT, "
    "SESSION_COOKIE_NAME, SESSION_KEY_PREFIX,\n"
    "     CORRAL_DRAIN_IDLE_WINDOW (1s)\n";

struct Flags {
  bool secure_cookie = false;
  absl::Duration drain_timeout = absl::Seconds(15);
};

// Exits 2 with one line naming the flag or variable and its value.
[[noreturn]] void Usage(absl::string_view what) {
  fprintf(stderr, "corral-worker: %.*s\n%s", static_cast<int>(what.size()),
          what.data(), kUsage);
  exit(2);
}

// The agent's duration syntax (common/duration.h), and > 0.
absl::Duration DurationFrom(const char* name, absl::string_view text) {
  absl::StatusOr<absl::Duration> d =
      corral::common::ParseDuration({text.data(), text.size()});
  if (!d.ok()) {
    Usage(absl::StrCat(name, "=\"", text, "\": ", d.status().message()));
  }
  if (*d == absl::ZeroDuration()) {
    Usage(absl::StrCat(name, "=\"", text, "\": expected a duration > 0"));
  }
  return *d;
}

Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  const char* secure = getenv("CORRAL_SECURE_COOKIE");
  flags.secure_cookie = secure != nullptr && (strcmp(secure, "1") == 0 ||
                                              strcmp(secure, "true") == 0);
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--secure-cookie") {
      flags.secure_cookie = true;
    } else if (absl::ConsumePrefix(&arg, "--drain-timeout=")) {
      flags.drain_timeout = DurationFrom("--drain-timeout", arg);
    } else if (arg == "--help" || arg == "-h") {
      fputs(kUsage, stdout);
      exit(0);
    } else {
      Usage(absl::StrCat("unknown argument \"", arg, "\""));
    }
  }
  return flags;
}

std::string StatusLine(RedisClient::State state, const std::string& detail) {
  switch (state) {
    case RedisClient::State::kUp:
      return absl::StrCat("serving; redis up at ", detail);
    case RedisClient::State::kDown:
      return absl::StrCat("serving; sessions unavailable, redis down: ",
                          detail);
    default:
      return absl::StrCat("serving; redis ", RedisStateName(state));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = ParseFlags(argc, argv);
  absl::StatusOr<RedisConfig> redis_config = RedisConfigFromEnvironment();
  if (!redis_config.ok()) Usage(redis_config.status().message());
  absl::StatusOr<HttpServerOptions> http_options =
      HttpServerOptionsFromEnvironment({.server_name = "corral-worker"});
  if (!http_options.ok()) Usage(http_options.status().message());
  // Idle connections are closed after the window; a window as long as the
  // whole drain would end every drain at its deadline (exit 1). A short
  // --drain-timeout shortens the default window; a set one must fit.
  if (http_options->drain_idle_window >= flags.drain_timeout) {
    if (getenv(kDrainIdleWindowEnv) != nullptr) {
      Usage(absl::StrCat(kDrainIdleWindowEnv, "=",
                         absl::FormatDuration(http_options->drain_idle_window),
                         " must be shorter than --drain-timeout=",
                         absl::FormatDuration(flags.drain_timeout)));
    }
    http_options->drain_idle_window = flags.drain_timeout / 2;
  }
  absl::StatusOr<SessionOptions> session_options =
      SessionOptionsFromEnvironment();
  if (!session_options.ok()) Usage(session_options.status().message());

  WorkerOptions options;
  options.drain_timeout = flags.drain_timeout;
  absl::StatusOr<std::unique_ptr<Worker>> created = Worker::Create(options);
  if (!created.ok()) Usage(created.status().message());
  Worker& worker = **created;
  setvbuf(stderr, nullptr, _IOLBF, 0);
  // The SDK's own messages in this binary's format, with the worker's id.
  SetLogSink([id = worker.id()](LogSeverity, absl::string_view message) {
    fprintf(stderr, "corral-worker %s: %.*s\n", id.c_str(),
            static_cast<int>(message.size()), message.data());
  });
  if (!worker.listen_note().empty()) {
    fprintf(stderr, "corral-worker: ignoring inherited sockets: %s\n",
            worker.listen_note().c_str());
  }

  RedisClient redis(worker.io(), *redis_config);
  std::string last_line;
  redis.OnStateChange([&](RedisClient::State state, const std::string& d) {
    if (worker.draining() || state == RedisClient::State::kConnecting) return;
    std::string line = StatusLine(state, d);
    // Retries repeat the same failure every backoff step: say it once.
    if (line == last_line) return;
    last_line = line;
    fprintf(stderr, "corral-worker %s: %s\n", worker.id().c_str(),
            line.c_str());
    worker.SetStatus(line);
  });
  SessionStore sessions(redis, *std::move(session_options));
  ReferenceApp app(redis, sessions,
                   AppOptions{.worker_id = worker.id(),
                              .secure_cookie = flags.secure_cookie});
  HttpServer server(
      worker.io(),
      [&app](const HttpRequest& req, Respond respond) {
        app.Handle(req, std::move(respond));
      },
      *http_options);
  std::vector<Listener> listeners = worker.TakeListeners();
  if (absl::Status s = server.Start(listeners); !s.ok()) {
    Usage(s.message());
  }
  worker.OnDrain([&](std::function<void()> done) {
    server.Drain([&redis, done] {
      redis.Stop();
      done();
    });
  });
  redis.Start();
  fprintf(stderr,
          "corral-worker %s: pid %d serving on %zu socket(s)%s; sessions in "
          "%s\n",
          worker.id().c_str(), getpid(), listeners.size(),
          listeners.size() == 1 && !listeners[0].inherited ? " ($PORT)" : "",
          redis_config->Describe().c_str());
  int code = worker.Run();
  fprintf(stderr, "corral-worker %s: exiting with %d after %llu requests\n",
          worker.id().c_str(), code,
          static_cast<unsigned long long>(server.requests_served()));
  return code;
}
