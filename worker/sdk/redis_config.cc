#include "worker/sdk/redis_config.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace corral::worker {
namespace {

absl::Status UrlError(absl::string_view url, absl::string_view why) {
  // Never echo a password back into logs.
  std::string shown(url);
  if (size_t at = shown.rfind('@'); at != std::string::npos) {
    size_t scheme = shown.find("://");
    size_t start = scheme == std::string::npos ? 0 : scheme + 3;
    shown.replace(start, at - start, "***");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("REDIS_URL=\"", shown, "\": ", why));
}

bool ParsePort(absl::string_view text, int* port) {
  return absl::SimpleAtoi(text, port) && *port > 0 && *port <= 65535;
}

absl::StatusOr<RedisAddress> ParseHostPort(absl::string_view text) {
  RedisAddress addr;
  absl::string_view host = text;
  absl::string_view port;
  if (absl::StartsWith(text, "[")) {  // [v6]:port
    size_t close = text.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("unclosed [");
    }
    host = text.substr(1, close - 1);
    absl::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return absl::InvalidArgumentError("junk after ]");
      port = rest.substr(1);
    }
  } else if (size_t colon = text.rfind(':'); colon != absl::string_view::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty()) return absl::InvalidArgumentError("no host");
  addr.host = std::string(host);
  if (!port.empty() && !ParsePort(port, &addr.port)) {
    return absl::InvalidArgumentError(absl::StrCat("bad port \"", port, "\""));
  }
  return addr;
}

absl::Status ParseUnixQuery(absl::string_view url, absl::string_view query,
                            RedisConfig* config) {
  for (absl::string_view kv : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> p =
        absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (p.first == "db") {
      if (!absl::SimpleAtoi(p.second, &config->db) || config->db < 0) {
        return UrlError(url, "bad db");
      }
    } else if (p.first == "password") {
      config->password = std::string(p.second);
    } else {
      return UrlError(url, absl::StrCat("unknown parameter \"", p.first, "\""));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RedisConfig> ParseUnixUrl(absl::string_view url) {
  RedisConfig config;
  absl::string_view rest = url;
  absl::ConsumePrefix(&rest, "unix:");
  absl::ConsumePrefix(&rest, "//");  // unix:///path
  absl::string_view path = rest;
  if (size_t q = rest.find('?'); q != absl::string_view::npos) {
    path = rest.substr(0, q);
    if (absl::Status s = ParseUnixQuery(url, rest.substr(q + 1), &config);
        !s.ok()) {
      return s;
    }
  }
  if (!absl::StartsWith(path, "/")) {
    return UrlError(url, "a unix socket path must be absolute");
  }
  config.address.unix_path = std::string(path);
  return config;
}

}  // namespace

std::string RedisAddress::ToString() const {
  if (!unix_path.empty()) return absl::StrCat("unix:", unix_path);
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

std::string RedisConfig::Describe() const {
  if (!sentinel_mode()) {
    return absl::StrCat("redis://", address.ToString(), "/", db);
  }
  return absl::StrCat(
      "sentinel:", master_name, "@",
      absl::StrJoin(sentinels, ",",
                    [](std::string* out, const RedisAddress& a) {
                      out->append(a.ToString());
                    }),
      "/", db);
}

absl::StatusOr<RedisConfig> ParseRedisUrl(absl::string_view url) {
  if (absl::StartsWith(url, "unix:")) return ParseUnixUrl(url);
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "redis://")) {
    return UrlError(url, "expected redis://host:port/db or unix:/path");
  }
  RedisConfig config;
  if (size_t at = rest.rfind('@'); at != absl::string_view::npos) {
    absl::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (size_t colon = userinfo.find(':'); colon != absl::string_view::npos) {
      config.username = std::string(userinfo.substr(0, colon));
      config.password = std::string(userinfo.substr(colon + 1));
    } else {
      config.password = std::string(userinfo);  // redis://secret@host
    }
  }
  absl::string_view hostport = rest;
  if (size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    hostport = rest.substr(0, slash);
    absl::string_view db = rest.substr(slash + 1);
    if (!db.empty() && (!absl::SimpleAtoi(db, &config.db) || config.db < 0)) {
      return UrlError(url, absl::StrCat("bad db \"", db, "\""));
    }
  }
  if (hostport.empty()) return config;  // redis:// = the default address
  absl::StatusOr<RedisAddress> addr = ParseHostPort(hostport);
  if (!addr.ok()) return UrlError(url, addr.status().message());
  config.address = *addr;
  return config;
}

absl::StatusOr<std::vector<RedisAddress>> ParseSentinelList(
    absl::string_view list) {
  std::vector<RedisAddress> out;
  for (absl::string_view item : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    item = absl::StripAsciiWhitespace(item);
    absl::StatusOr<RedisAddress> addr = ParseHostPort(item);
    if (!addr.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("REDIS_SENTINELS=\"", list, "\": \"", item,
                       "\": ", addr.status().message()));
    }
    if (absl::StrContains(item, ':') || absl::StartsWith(item, "[")) {
      out.push_back(*addr);
    } else {
      addr->port = 26379;  // Sentinel's default port
      out.push_back(*addr);
    }
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("REDIS_SENTINELS=\"", list, "\" names no sentinel"));
  }
  return out;
}

absl::StatusOr<RedisConfig> RedisConfigFromEnvironment() {
  const char* url = getenv("REDIS_URL");
  absl::StatusOr<RedisConfig> config = ParseRedisUrl(
      url != nullptr && *url != '\0' ? url : "redis://127.0.0.1:6379/0");
  if (!config.ok()) return config;
  const char* sentinels = getenv("REDIS_SENTINELS");
  if (sentinels != nullptr && *sentinels != '\0') {
    absl::StatusOr<std::vector<RedisAddress>> list =
        ParseSentinelList(sentinels);
    if (!list.ok()) return list.status();
    config->sentinels = *std::move(list);
  }
  if (const char* name = getenv("REDIS_MASTER_NAME");
      name != nullptr && *name != '\0') {
    config->master_name = name;
  }
  if (const char* pw = getenv("REDIS_SENTINEL_PASSWORD"); pw != nullptr) {
    config->sentinel_password = pw;
  }
  return config;
}

}  // namespace corral::worker
