// Builds against the installed SDK: a worker with one route, and sessions.
#include <utility>

#include "worker/sdk/http_server.h"
#include "worker/sdk/redis_client.h"
#include "worker/sdk/session_store.h"
#include "worker/sdk/worker.h"

int main() {
  using namespace corral::worker;
  auto worker = Worker::Create({});
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
