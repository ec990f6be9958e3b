// The reference worker's HTTP routes:
//   GET /          hello, with worker id and pid
//   GET /session   a per-session counter in Redis (cookie corral_sid)
//   POST /session/rotate   new session id, same data (after a login, say)
//   DELETE /session        end the session (logout)
//   GET /heavy?n=  CPU work: sum of sqrt(i) for i < n (default 1e7)
//   GET /healthz   200 while the worker serves; shows the Redis state
// Unknown paths 404, wrong methods 405, bad parameters 400.
//
// Single-threaded: runs on the worker's loop.
#ifndef CORRAL_WORKER_CORRAL_WORKER_APP_H_
#define CORRAL_WORKER_CORRAL_WORKER_APP_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "worker/sdk/http_server.h"
#include "worker/sdk/redis_client.h"
#include "worker/sdk/session_store.h"

namespace corral::worker {

struct AppOptions {
  // $CORRAL_WORKER_ID or "standalone".
  std::string worker_id = "standalone";
  // Add `Secure` to the session cookie (behind TLS).
  bool secure_cookie = false;
  // The largest n /heavy accepts.
  int64_t heavy_max = 1'000'000'000;
};

// The value of cookie `name` in the request's Cookie headers, if any.
std::optional<std::string> FindCookie(const HttpRequest& req,
                                      absl::string_view name);

class ReferenceApp {
 public:
  ReferenceApp(RedisClient& redis, SessionStore& sessions, AppOptions options);
  ReferenceApp(const ReferenceApp&) = delete;
  ReferenceApp& operator=(const ReferenceApp&) = delete;

  void Handle(const HttpRequest& req, Respond respond);

 private:
  void Hello(Respond respond);
  void SessionCounter(const HttpRequest& req, Respond respond);
  void RotateSession(const HttpRequest& req, Respond respond);
  void EndSession(const HttpRequest& req, Respond respond);
  void Heavy(absl::string_view query, Respond respond);
  void Healthz(Respond respond);
  HttpResponse Unavailable(const absl::Status& status) const;
  std::string SessionCookie(const std::string& id) const;

  RedisClient& redis_;
  SessionStore& sessions_;
  const AppOptions options_;
  const int pid_;
};

}  // namespace corral::worker

#endif  // CORRAL_WORKER_CORRAL_WORKER_APP_H_
