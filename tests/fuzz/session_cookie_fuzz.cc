// Fuzzes what the worker SDK does with a session cookie a client sent
// (worker/sdk/session_id.h, cookie_signature.h, SessionStore::IdFromCookie)
// in both session formats: corral's bare ids and express-session's signed
// `s:<id>.<mac>` cookies (connect-redis).
//
// Input: the cookie value; for the round trips, the input is also split at
// its first '\n' into an id and a secret.
// Invariants: only 43-character base64url ids that re-encode the same are
// well formed, and only those (or, signed, ids of at most 256 bytes) reach
// Redis; a cookie no secret signed is refused; any id signed with a secret
// comes back from its cookie; flipping one byte of the signature is
// refused; decodeURIComponent(encodeURIComponent(x)) == x.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "boost/asio/io_context.hpp"
#include "tests/fuzz/fuzz_check.h"
#include "worker/sdk/cookie_signature.h"
#include "worker/sdk/redis_client.h"
#include "worker/sdk/session_id.h"
#include "worker/sdk/session_store.h"

namespace corral::worker {
namespace {

const std::vector<std::string>& Secrets() {
  static const std::vector<std::string> s = {"new secret", "old secret"};
  return s;
}

// Stores that never connect: IdFromCookie needs no Redis.
struct Stores {
  boost::asio::io_context io;
  RedisClient redis{io, RedisConfig{}};
  SessionStore bare{redis, SessionOptions{}};
  SessionStore signed_corral{redis, [] {
                               SessionOptions o;
                               o.cookie_secrets = Secrets();
                               return o;
                             }()};
  SessionStore connect_redis{redis, [] {
                               SessionOptions o;
                               o.format = SessionFormat::kConnectRedis;
                               o.cookie_secrets = Secrets();
                               return o;
                             }()};
};

Stores& GetStores() {
  static Stores* stores = new Stores;
  return *stores;
}

bool Base64UrlChars(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_') {
      return false;
    }
  }
  return true;
}

void CheckCookie(absl::string_view cookie) {
  Stores& st = GetStores();
  if (IsWellFormedSessionId(cookie)) {
    FUZZ_CHECK(cookie.size() == kSessionIdLength && Base64UrlChars(cookie),
               "well formed: ", fuzz::Shown(cookie));
    std::string raw;
    FUZZ_CHECK(absl::WebSafeBase64Unescape(cookie, &raw) &&
                   raw.size() == kSessionIdBytes &&
                   absl::WebSafeBase64Escape(raw) == cookie,
               "not the encoding of 32 bytes: ", fuzz::Shown(cookie));
  }
  std::optional<std::string> bare = st.bare.IdFromCookie(cookie);
  FUZZ_CHECK(bare.has_value() == IsWellFormedSessionId(cookie), "bare cookie ",
             fuzz::Shown(cookie));
  // Nothing unsigned gets through a store with secrets (fuzzed input cannot
  // forge HMAC-SHA256; a hit here means the check is skipped somewhere).
  std::optional<std::string> id = st.signed_corral.IdFromCookie(cookie);
  if (id) {
    FUZZ_CHECK(IsWellFormedSessionId(*id), "signed id ", fuzz::Shown(*id));
    FUZZ_CHECK(IdFromSignedCookie(cookie, Secrets()) == id, "signature");
  }
  id = st.connect_redis.IdFromCookie(cookie);
  if (id) {
    FUZZ_CHECK(!id->empty() && id->size() <= 256, "connect-redis id");
    FUZZ_CHECK(IdFromSignedCookie(cookie, Secrets()) == id, "signature");
  }
}

void CheckRoundTrips(absl::string_view in) {
  FUZZ_CHECK(DecodeUriComponent(EncodeUriComponent(in)) == in,
             "URI round trip of ", fuzz::Shown(in));
  const size_t nl = in.find('\n');
  const absl::string_view id = in.substr(0, nl);
  const std::string secret =
      nl == absl::string_view::npos ? "s" : std::string(in.substr(nl + 1));
  const std::string cookie = SignedCookieValue(id, secret);
  FUZZ_CHECK(IdFromSignedCookie(cookie, {secret}) == std::string(id),
             "signed cookie of ", fuzz::Shown(id), " does not give it back");
  FUZZ_CHECK(UnsignSessionId(SignSessionId(id, secret), {"x", secret}) ==
                 std::string(id),
             "the second secret does not verify");
  // A signature with one character changed is refused.
  std::string tampered = SignSessionId(id, secret);
  char& last = tampered.back();
  last = last == 'A' ? 'B' : 'A';
  FUZZ_CHECK(!UnsignSessionId(tampered, {secret}).has_value(),
             "tampered signature accepted for ", fuzz::Shown(id));
  if (IsWellFormedSessionId(id)) {
    const std::string value = GetStores().signed_corral.CookieValue(id);
    FUZZ_CHECK(GetStores().signed_corral.IdFromCookie(value) == std::string(id),
               "store round trip");
  }
}

}  // namespace
}  // namespace corral::worker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);
  corral::worker::CheckCookie(in);
  corral::worker::CheckRoundTrips(in);
  return 0;
}
