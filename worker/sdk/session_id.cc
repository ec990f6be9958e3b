#include "worker/sdk/session_id.h"

#include <openssl/evp.h>
#include <sys/random.h>

#include <cerrno>
#include <memory>

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

namespace {

// The value of a base64url character, or -1.
int Base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

}  // namespace

// Checked on every request, so without decoding: 43 characters carry 258
// bits for 256, and the 2 spare bits (the low bits of the last character)
// are 0 in the one spelling NewSessionId() writes.
bool IsWellFormedSessionId(absl::string_view id) {
  static_assert(kSessionIdLength * 6 - kSessionIdBytes * 8 == 2);
  if (id.size() != kSessionIdLength) return false;
  for (char c : id) {
    if (Base64UrlValue(c) < 0) return false;
  }
  return (Base64UrlValue(id.back()) & 0b11) == 0;
}

std::string Sha256Hex(absl::string_view data) {
  // Once per request: fetch the algorithm once (EVP_sha256() looks it up in
  // the provider tables on every use) and reuse one context per thread.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(
      EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (kSha256 == nullptr || ctx == nullptr ||
      EVP_DigestInit_ex2(ctx.get(), kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1) {
    EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), len));
}

}  // namespace corral::worker
