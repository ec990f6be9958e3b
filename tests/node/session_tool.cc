// session_tool: one SessionStore operation from the command line, for the
// Node <-> C++ interop tests (worker/node/test/interop.test.js). Settings
// from the environment as corral-worker reads them (REDIS_URL, SESSION_*).
//
//   session_tool load COOKIE
//   session_tool increment COOKIE FIELD DELTA
//   session_tool set COOKIE FIELD VALUE
//
// Prints one JSON object: {"cookie":...,"new":...,"value":N} or
// {"cookie":...,"new":...,"fields":{name: value text}}, or {"error":...}
// with exit 1.
#include <cstdio>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/steady_timer.hpp"
#include "worker/sdk/json_object.h"
#include "worker/sdk/redis_client.h"
#include "worker/sdk/redis_config.h"
#include "worker/sdk/session_store.h"

namespace {

using namespace corral::worker;

int Fail(const std::string& why) {
  printf("{\"error\":%s}\n", JsonQuote(why).c_str());
  return 1;
}

std::string SessionJson(const Session& s) {
  JsonMembers fields;
  for (const auto& [name, value] : s.fields) {
    fields.push_back({name, JsonQuote(value)});
  }
  return absl::StrCat("{\"cookie\":", JsonQuote(s.id),
                      ",\"new\":", s.is_new ? "true" : "false",
                      ",\"fields\":", WriteJsonObject(fields), "}");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3)
    return Fail("usage: session_tool load|increment|set COOKIE ...");
  const std::string op = argv[1];
  const std::string cookie = argv[2];
  auto config = RedisConfigFromEnvironment();
  if (!config.ok()) return Fail(std::string(config.status().message()));
  auto options = SessionOptionsFromEnvironment();
  if (!options.ok()) return Fail(std::string(options.status().message()));

  boost::asio::io_context io;
  RedisClient redis(io, *config);
  SessionStore store(redis, *options);
  std::optional<std::string> out;
  std::string error;
  auto finish = [&](std::string text) {
    out = std::move(text);
    redis.Stop();
  };
  auto fail = [&](const absl::Status& s) {
    error = std::string(s.message());
    finish("");
  };
  redis.Start();
  if (op == "load") {
    store.Load(cookie, [&](absl::StatusOr<Session> s) {
      if (!s.ok()) return fail(s.status());
      finish(SessionJson(*s));
    });
  } else if (op == "increment" && argc == 5) {
    int64_t delta = 0;
    if (!absl::SimpleAtoi(argv[4], &delta)) return Fail("bad DELTA");
    store.Increment(
        cookie, argv[3], delta, [&](absl::StatusOr<SessionCounter> c) {
          if (!c.ok()) return fail(c.status());
          finish(absl::StrCat("{\"cookie\":", JsonQuote(c->id),
                              ",\"new\":", c->is_new ? "true" : "false",
                              ",\"value\":", c->value, "}"));
        });
  } else if (op == "set" && argc == 5) {
    store.Set(cookie, {{argv[3], argv[4]}}, [&](absl::Status s) {
      if (!s.ok()) return fail(s);
      finish(absl::StrCat("{\"cookie\":", JsonQuote(cookie), "}"));
    });
  } else {
    return Fail(absl::StrCat("unknown command: ", op));
  }
  // Commands wait for the connection (connect timeout); bound the run.
  boost::asio::steady_timer deadline(io, std::chrono::seconds(10));
  deadline.async_wait([&](boost::system::error_code ec) {
    if (!ec && !out) fail(absl::DeadlineExceededError("no answer in 10 s"));
  });
  while (!out && io.run_one() > 0) {
  }
  deadline.cancel();
  if (!error.empty()) return Fail(error);
  printf("%s\n", out->c_str());
  return 0;
}
