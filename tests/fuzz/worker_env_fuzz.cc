// Fuzzes the worker SDK's readers of its environment: REDIS_URL,
// REDIS_SENTINELS (worker/sdk/redis_config.h), LISTEN_PID / LISTEN_FDS /
// LISTEN_FDNAMES (listeners.h) and WATCHDOG_USEC / WATCHDOG_PID
// (notifier.h). A deployment writes them, and the agent or systemd sets
// the LISTEN_* and WATCHDOG_* ones; any value must give a clear error or a
// usable setting.
//
// Input: the first byte picks the reader; the rest is the value(s), '\n'
// separated where there are several.
// Invariants: ports within 1..65535 (or 0 for unix sockets); a db >= 0;
// errors never quote a password; LISTEN_FDS gives as many names as
// sockets and never a negative count; a watchdog interval is > 0 and half
// of WATCHDOG_USEC at most.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "tests/fuzz/fuzz_check.h"
#include "worker/sdk/listeners.h"
#include "worker/sdk/notifier.h"
#include "worker/sdk/redis_config.h"

namespace corral::worker {
namespace {

void CheckAddress(const RedisAddress& a, absl::string_view in) {
  if (a.unix_path.empty()) {
    FUZZ_CHECK(a.port >= 1 && a.port <= 65535, "port ", a.port, " from ",
               fuzz::Shown(in));
    FUZZ_CHECK(!a.host.empty(), "empty host from ", fuzz::Shown(in));
  }
}

void CheckRedisUrl(absl::string_view in) {
  absl::StatusOr<RedisConfig> c = ParseRedisUrl(in);
  if (!c.ok()) {
    // The password of a URL that has one stays out of the message (found
    // as the parser finds it: userinfo before the last '@', after its
    // first ':').
    absl::string_view rest = in;
    const size_t at = rest.rfind('@');
    if (absl::ConsumePrefix(&rest, "redis://") &&
        at != absl::string_view::npos) {
      const absl::string_view userinfo = rest.substr(0, at - 8);
      const size_t colon = userinfo.find(':');
      const absl::string_view password = colon == absl::string_view::npos
                                             ? userinfo
                                             : userinfo.substr(colon + 1);
      const absl::string_view others = rest.substr(at - 8 + 1);
      if (password.size() >= 8 && !absl::StrContains(others, password) &&
          !absl::StrContains(userinfo.substr(0, colon), password)) {
        FUZZ_CHECK(!absl::StrContains(c.status().message(), password),
                   "the error quotes the password: ", c.status().message());
      }
    }
    return;
  }
  CheckAddress(c->address, in);
  FUZZ_CHECK(c->db >= 0, "db ", c->db);
}

void CheckSentinels(absl::string_view in) {
  absl::StatusOr<std::vector<RedisAddress>> list = ParseSentinelList(in);
  if (!list.ok()) return;
  for (const RedisAddress& a : *list) CheckAddress(a, in);
}

void CheckListenEnv(absl::string_view in) {
  std::vector<std::string> v = absl::StrSplit(in, '\n');
  v.resize(3);
  ListenEnv env{v[0], v[1], v[2]};
  const pid_t self = 4242;
  absl::StatusOr<ListenPlan> plan = ParseListenEnv(env, self);
  if (!plan.ok()) return;
  FUZZ_CHECK(plan->count >= 0 && plan->count < 65536, "count ", plan->count);
  if (plan->count > 0) {
    FUZZ_CHECK(plan->names.size() == static_cast<size_t>(plan->count),
               plan->names.size(), " names for ", plan->count, " sockets");
  }
}

void CheckWatchdog(absl::string_view in) {
  std::vector<std::string> v = absl::StrSplit(in, '\n');
  v.resize(2);
  absl::StatusOr<std::optional<absl::Duration>> every = ParseWatchdogInterval(
      v[0], v[1].empty() ? std::nullopt : std::optional(v[1]), 4242);
  if (!every.ok() || !every->has_value()) return;
  FUZZ_CHECK(**every > absl::ZeroDuration(), "interval ",
             absl::FormatDuration(**every), " from ", fuzz::Shown(in));
  uint64_t usec = 0;
  if (absl::SimpleAtoi(v[0], &usec)) {
    FUZZ_CHECK(**every <= absl::Microseconds(usec) / 2 + absl::Microseconds(1),
               "interval longer than half of WATCHDOG_USEC=", v[0]);
  }
}

}  // namespace
}  // namespace corral::worker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      corral::worker::CheckRedisUrl(in);
      break;
    case 1:
      corral::worker::CheckSentinels(in);
      break;
    case 2:
      corral::worker::CheckListenEnv(in);
      break;
    case 3:
      corral::worker::CheckWatchdog(in);
      break;
  }
  return 0;
}
