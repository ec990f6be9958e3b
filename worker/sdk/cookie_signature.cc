#include "worker/sdk/cookie_signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace corral::worker {
namespace {

// base64(HMAC-SHA256(secret, data)) without '=' padding.
std::string Signature(absl::string_view data, absl::string_view secret) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
       &len);
  std::string b64 = absl::Base64Escape(
      absl::string_view(reinterpret_cast<const char*>(mac), len));
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  return b64;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(static_cast<unsigned char>(c));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::string SignSessionId(absl::string_view id, absl::string_view secret) {
  return absl::StrCat("s:", id, ".", Signature(id, secret));
}

std::optional<std::string> UnsignSessionId(
    absl::string_view value, const std::vector<std::string>& secrets) {
  if (!absl::ConsumePrefix(&value, "s:")) return std::nullopt;
  size_t dot = value.rfind('.');
  if (dot == absl::string_view::npos) return std::nullopt;
  absl::string_view id = value.substr(0, dot);
  absl::string_view mac = value.substr(dot + 1);
  for (const std::string& secret : secrets) {
    std::string expected = Signature(id, secret);
    // Constant time, so the signature cannot be guessed byte by byte.
    if (expected.size() == mac.size() &&
        CRYPTO_memcmp(expected.data(), mac.data(), mac.size()) == 0) {
      return std::string(id);
    }
  }
  return std::nullopt;
}

std::string SignedCookieValue(absl::string_view id, absl::string_view secret) {
  return EncodeUriComponent(SignSessionId(id, secret));
}

std::optional<std::string> IdFromSignedCookie(
    absl::string_view cookie, const std::vector<std::string>& secrets) {
  return UnsignSessionId(DecodeUriComponent(cookie), secrets);
}

std::string EncodeUriComponent(absl::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (absl::ascii_isalnum(c) || absl::StrContains("-_.!~*'()", ch)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string DecodeUriComponent(absl::string_view text) {
  if (!absl::StrContains(text, '%')) return std::string(text);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::string(text);
    int hi = HexValue(text[i + 1]);
    int lo = HexValue(text[i + 2]);
    if (hi < 0 || lo < 0) return std::string(text);
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

}  // namespace corral::worker
