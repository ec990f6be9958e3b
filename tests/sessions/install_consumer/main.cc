// Builds against the installed SDK: a worker with one route, and sessions;
// the shared duration parser and the log sink come with it.
#include <cstdio>
#include <utility>

#include "common/duration.h"
#include "worker/sdk/http_server.h"
#include "worker/sdk/log.h"
#include "worker/sdk/redis_client.h"
#include "worker/sdk/session_store.h"
#include "worker/sdk/worker.h"

int main() {
  using namespace corral::worker;
  SetLogSink([](LogSeverity, absl::string_view message) {
    fprintf(stderr, "consumer: %.*s\n", static_cast<int>(message.size()),
            message.data());
  });
  auto drain = corral::common::ParseDuration("2s");
  if (!drain.ok()) return 2;
  auto worker = Worker::Create({.drain_timeout = *drain});
  if (!worker.ok()) return 2;
  auto config = RedisConfigFromEnvironment();
  if (!config.ok()) return 2;
  RedisClient redis((*worker)->io(), *config);
  SessionStore sessions(redis);
  HttpServer server((*worker)->io(), [](const HttpRequest&, Respond respond) {
    respond(TextResponse(boost::beast::http::status::ok, "consumer\n"));
  });
  if (!server.Start((*worker)->TakeListeners()).ok()) return 2;
  (*worker)->OnDrain(
      [&](std::function<void()> done) { server.Drain(std::move(done)); });
  return (*worker)->Run();
}
