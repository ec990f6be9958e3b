#include "worker/corral_worker/app.h"

#include <unistd.h>

#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace corral::worker {
namespace {

namespace http = boost::beast::http;

HttpResponse Json(http::status status, std::string body) {
  HttpResponse res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body) + "\n";
  return res;
}

// Splits "/path?query" into its parts.
std::pair<absl::string_view, absl::string_view> SplitTarget(
    absl::string_view target) {
  size_t q = target.find('?');
  if (q == absl::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

std::optional<absl::string_view> QueryParam(absl::string_view query,
                                            absl::string_view name) {
  for (absl::string_view kv : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> p =
        absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (p.first == name) return p.second;
  }
  return std::nullopt;
}

bool IsGetLike(const HttpRequest& req) {
  return req.method() == http::verb::get || req.method() == http::verb::head;
}

HttpResponse MethodNotAllowed(const char* allow) {
  HttpResponse res =
      TextResponse(http::status::method_not_allowed, "method not allowed\n");
  res.set(http::field::allow, allow);
  return res;
}

}  // namespace

std::optional<std::string> FindCookie(const HttpRequest& req,
                                      absl::string_view name) {
  auto [begin, end] = req.equal_range(http::field::cookie);
  for (auto it = begin; it != end; ++it) {
    for (absl::string_view pair : absl::StrSplit(
             absl::string_view(it->value().data(), it->value().size()), ';',
             absl::SkipEmpty())) {
      pair = absl::StripAsciiWhitespace(pair);
      if (absl::ConsumePrefix(&pair, name) && absl::ConsumePrefix(&pair, "=")) {
        return std::string(absl::StripAsciiWhitespace(pair));
      }
    }
  }
  return std::nullopt;
}

ReferenceApp::ReferenceApp(RedisClient& redis, SessionStore& sessions,
                           AppOptions options)
    : redis_(redis),
      sessions_(sessions),
      options_(std::move(options)),
      pid_(getpid()) {}

void ReferenceApp::Handle(const HttpRequest& req, Respond respond) {
  auto [path, query] =
      SplitTarget(absl::string_view(req.target().data(), req.target().size()));
  if (path == "/session") {
    if (IsGetLike(req)) return SessionCounter(req, std::move(respond));
    if (req.method() == http::verb::delete_) {
      return EndSession(req, std::move(respond));
    }
    return respond(MethodNotAllowed("GET, HEAD, DELETE"));
  }
  if (path == "/session/rotate") {
    if (req.method() == http::verb::post) {
      return RotateSession(req, std::move(respond));
    }
    return respond(MethodNotAllowed("POST"));
  }
  if (path != "/" && path != "/heavy" && path != "/healthz") {
    return respond(TextResponse(http::status::not_found,
                                absl::StrCat("no such page: ", path, "\n")));
  }
  if (!IsGetLike(req)) return respond(MethodNotAllowed("GET, HEAD"));
  if (path == "/") return Hello(std::move(respond));
  if (path == "/heavy") return Heavy(query, std::move(respond));
  Healthz(std::move(respond));
}

void ReferenceApp::Hello(Respond respond) {
  respond(
      TextResponse(http::status::ok,
                   absl::StrCat("hello from corral-worker ", options_.worker_id,
                                " (pid ", pid_, ")\n")));
}

std::string ReferenceApp::SessionCookie(const std::string& id) const {
  return absl::StrCat(
      sessions_.options().cookie_name, "=", id, "; Path=/; Max-Age=",
      absl::ToInt64Seconds(sessions_.options().absolute_timeout),
      "; HttpOnly; SameSite=Lax", options_.secure_cookie ? "; Secure" : "");
}

HttpResponse ReferenceApp::Unavailable(const absl::Status& status) const {
  HttpResponse res = TextResponse(
      http::status::service_unavailable,
      absl::StrCat("session store unavailable: ", status.message(),
                   "\nSessions need Redis; the rest of this service keeps "
                   "working. Retry shortly.\n"));
  res.set(http::field::retry_after, "1");
  res.set(http::field::cache_control, "no-store");
  return res;
}

void ReferenceApp::SessionCounter(const HttpRequest& req, Respond respond) {
  std::string cookie =
      FindCookie(req, sessions_.options().cookie_name).value_or("");
  sessions_.Increment(
      cookie, "counter", 1,
      [this, respond = std::move(respond)](
          absl::StatusOr<corral::worker::SessionCounter> c) {
        if (!c.ok()) {
          if (absl::IsUnavailable(c.status())) {
            return respond(Unavailable(c.status()));
          }
          return respond(TextResponse(
              http::status::internal_server_error,
              absl::StrCat("session error: ", c.status().message(), "\n")));
        }
        HttpResponse res = Json(
            http::status::ok,
            absl::StrFormat(R"({"counter":%d,"new":%s,"worker":"%s","pid":%d})",
                            c->value, c->is_new ? "true" : "false",
                            options_.worker_id, pid_));
        if (c->is_new) res.set(http::field::set_cookie, SessionCookie(c->id));
        respond(std::move(res));
      });
}

void ReferenceApp::RotateSession(const HttpRequest& req, Respond respond) {
  std::string cookie =
      FindCookie(req, sessions_.options().cookie_name).value_or("");
  sessions_.Rotate(cookie, [this, respond = std::move(respond)](
                               absl::StatusOr<std::string> id) {
    if (absl::IsUnavailable(id.status()))
      return respond(Unavailable(id.status()));
    if (absl::IsNotFound(id.status())) {
      return respond(TextResponse(http::status::not_found, "no session\n"));
    }
    if (!id.ok()) {
      return respond(TextResponse(http::status::internal_server_error,
                                  std::string(id.status().message()) + "\n"));
    }
    HttpResponse res = TextResponse(http::status::ok, "session id rotated\n");
    res.set(http::field::set_cookie, SessionCookie(*id));
    respond(std::move(res));
  });
}

void ReferenceApp::EndSession(const HttpRequest& req, Respond respond) {
  std::string cookie =
      FindCookie(req, sessions_.options().cookie_name).value_or("");
  sessions_.Destroy(
      cookie, [this, respond = std::move(respond)](absl::Status s) {
        if (!s.ok()) return respond(Unavailable(s));
        HttpResponse res = TextResponse(http::status::ok, "session ended\n");
        res.set(http::field::set_cookie,
                absl::StrCat(sessions_.options().cookie_name,
                             "=; Path=/; Max-Age=0; HttpOnly; "
                             "SameSite=Lax",
                             options_.secure_cookie ? "; Secure" : ""));
        respond(std::move(res));
      });
}

void ReferenceApp::Heavy(absl::string_view query, Respond respond) {
  int64_t n = 10'000'000;
  if (std::optional<absl::string_view> text = QueryParam(query, "n")) {
    if (!absl::SimpleAtoi(*text, &n) || n < 0 || n > options_.heavy_max) {
      return respond(
          TextResponse(http::status::bad_request,
                       absl::StrCat("n must be an integer from 0 to ",
                                    options_.heavy_max, "\n")));
    }
  }
  // Deliberately blocks this worker's loop, like a CPU-bound handler in the
  // Node examples: the other workers keep serving.
  double result = 0;
  for (int64_t i = 0; i < n; ++i) result += std::sqrt(static_cast<double>(i));
  respond(
      Json(http::status::ok,
           absl::StrFormat(R"({"n":%d,"result":%.6f,"worker":"%s","pid":%d})",
                           n, result, options_.worker_id, pid_)));
}

void ReferenceApp::Healthz(Respond respond) {
  respond(Json(http::status::ok,
               absl::StrFormat(R"({"status":"ok","worker":"%s","pid":%d,)"
                               R"("redis":"%s"})",
                               options_.worker_id, pid_,
                               RedisStateName(redis_.state()))));
}

}  // namespace corral::worker
