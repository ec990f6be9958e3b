// Session ids: 32 bytes from getrandom(2) (256 bits, well above OWASP's 128),
// written as unpadded base64url (43 characters). Redis never stores an id,
// only the SHA-256 of it, so a leaked dump of Redis holds no usable cookie.
//
// Thread-safe (no state).
#ifndef CORRAL_WORKER_SDK_SESSION_ID_H_
#define CORRAL_WORKER_SDK_SESSION_ID_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace corral::worker {

inline constexpr size_t kSessionIdBytes = 32;
inline constexpr size_t kSessionIdLength = 43;  // base64url of 32 bytes

// A fresh id. Fails only if the kernel's CSPRNG does (never in practice).
absl::StatusOr<std::string> NewSessionId();

// True for exactly the strings NewSessionId() can return: 43 characters of
// [A-Za-z0-9_-] that decode to 32 bytes and re-encode the same. Anything
// else from a cookie is untrusted input and never reaches Redis.
bool IsWellFormedSessionId(absl::string_view id);

// Lower-case hex SHA-256 of `data` (64 characters).
std::string Sha256Hex(absl::string_view data);

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_SESSION_ID_H_
