// Signed session cookies as express-session writes them (the npm
// cookie-signature package): the cookie value is
//
//   encodeURIComponent("s:" + id + "." + base64(HMAC-SHA256(secret, id)))
//
// with the base64 padding removed, e.g. `s%3AAbC...xyz.q0p%2B...`. Several
// secrets may be accepted (rotation: the first one signs, every one
// verifies), as express-session's `secret: [new, old]`.
//
// Thread-safe (no state).
#ifndef CORRAL_WORKER_SDK_COOKIE_SIGNATURE_H_
#define CORRAL_WORKER_SDK_COOKIE_SIGNATURE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace corral::worker {

// "s:<id>.<signature>" (not yet URL-encoded).
std::string SignSessionId(absl::string_view id, absl::string_view secret);

// The id inside a signed value "s:<id>.<signature>" when one of `secrets`
// signed it (compared in constant time); nullopt for anything else,
// including an unsigned value.
std::optional<std::string> UnsignSessionId(
    absl::string_view value, const std::vector<std::string>& secrets);

// The cookie value for a signed id: SignSessionId, URL-encoded as
// express-session's cookie serializer does (encodeURIComponent).
std::string SignedCookieValue(absl::string_view id, absl::string_view secret);

// The id in a cookie value as the browser sends it back (URL-decoded, then
// unsigned); nullopt when no secret signed it.
std::optional<std::string> IdFromSignedCookie(
    absl::string_view cookie, const std::vector<std::string>& secrets);

// JavaScript's encodeURIComponent / decodeURIComponent (a malformed
// %-sequence leaves the input as it is, as the npm `cookie` package does).
std::string EncodeUriComponent(absl::string_view text);
std::string DecodeUriComponent(absl::string_view text);

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_COOKIE_SIGNATURE_H_
