#include "worker/sdk/session_id.h"

#include <openssl/evp.h>
#include <sys/random.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "worker/sdk/errno_status.h"

namespace corral::worker {

absl::StatusOr<std::string> NewSessionId() {
  unsigned char bytes[kSessionIdBytes];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    // Flags 0: the urandom pool, blocking only before it is first seeded.
    ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "getrandom");
    }
    got += static_cast<size_t>(n);
  }
  return absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

bool IsWellFormedSessionId(absl::string_view id) {
  if (id.size() != kSessionIdLength) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_') {
      return false;
    }
  }
  std::string raw;
  if (!absl::WebSafeBase64Unescape(id, &raw) || raw.size() != kSessionIdBytes) {
    return false;
  }
  // The last character carries 2 spare bits; only one spelling is ours.
  return absl::WebSafeBase64Escape(raw) == id;
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), len));
}

}  // namespace corral::worker
