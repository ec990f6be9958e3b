#include "common/size.h"

#include <array>
#include <cctype>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace corral::common {
namespace {

using u128 = unsigned __int128;

// Debian's Abseil has its own string_view type.
absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }

constexpr u128 kMaxBytes = std::numeric_limits<int64_t>::max();
// More fractional digits than this cannot matter for a byte count and would
// overflow the arithmetic below.
constexpr int kMaxFractionDigits = 18;

struct Suffix {
  absl::string_view name;
  u128 multiplier;
};

constexpr u128 Pow(u128 base, int exp) {
  u128 result = 1;
  for (int i = 0; i < exp; ++i) result *= base;
  return result;
}

// The Kubernetes quantity suffixes for whole bytes ("m", milli, has none).
constexpr std::array<Suffix, 13> kSuffixes = {{
    {"", 1},
    {"k", Pow(1000, 1)},
    {"M", Pow(1000, 2)},
    {"G", Pow(1000, 3)},
    {"T", Pow(1000, 4)},
    {"P", Pow(1000, 5)},
    {"E", Pow(1000, 6)},
    {"Ki", Pow(1024, 1)},
    {"Mi", Pow(1024, 2)},
    {"Gi", Pow(1024, 3)},
    {"Ti", Pow(1024, 4)},
    {"Pi", Pow(1024, 5)},
    {"Ei", Pow(1024, 6)},
}};

constexpr absl::string_view kAccepted =
    "use a number of bytes, or k, M, G, T, P, E (powers of 1000) or Ki, Mi, "
    "Gi, Ti, Pi, Ei (powers of 1024), e.g. 512Mi or 1.5Gi";

std::optional<u128> Multiplier(absl::string_view suffix) {
  for (const Suffix& s : kSuffixes) {
    if (s.name == suffix) return s.multiplier;
  }
  return std::nullopt;
}

// "512m" -> " (did you mean 512M or 512Mi?)" for the usual Docker/JVM-style
// spellings (m, g, MB, GiB, K, ...); "" when no guess fits.
std::string SuffixHint(absl::string_view number, absl::string_view suffix) {
  const std::string folded = absl::AsciiStrToLower(suffix);
  absl::string_view unit = folded;
  if (!absl::ConsumeSuffix(&unit, "ib") && !absl::ConsumeSuffix(&unit, "i")) {
    absl::ConsumeSuffix(&unit, "b");
  }
  if (unit.size() != 1 ||
      std::string_view("kmgtpe").find(unit[0]) == std::string_view::npos) {
    return "";
  }
  const char upper = absl::ascii_toupper(unit[0]);
  const std::string decimal = unit == "k" ? "k" : std::string(1, upper);
  const std::string binary = std::string(1, upper) + "i";
  std::string hint = absl::StrCat(" (did you mean ", number, decimal, " or ",
                                  number, binary, "?");
  if (suffix == "m") absl::StrAppend(&hint, " \"m\" is milli");
  return hint + ")";
}

absl::Status Invalid(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrFormat("invalid size \"%s\": %s", text, why));
}

absl::Status TooLarge(absl::string_view text) {
  return Invalid(
      text, absl::StrCat("larger than the maximum ",
                         std::numeric_limits<int64_t>::max(), " bytes (8Ei)"));
}

// The number in front of the suffix: whole + fraction / denominator.
struct Decimal {
  u128 whole = 0;
  u128 fraction = 0;
  u128 denominator = 1;
  size_t length = 0;  // characters used
};

absl::StatusOr<Decimal> ParseDecimal(absl::string_view text) {
  Decimal d;
  size_t i = 0;
  for (; i < text.size() && absl::ascii_isdigit(text[i]); ++i) {
    d.whole = d.whole * 10 + (text[i] - '0');
    if (d.whole > kMaxBytes) return TooLarge(text);
  }
  const size_t whole_digits = i;
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && absl::ascii_isdigit(text[i]); ++i) {
      if (d.denominator == Pow(10, kMaxFractionDigits)) {
        return Invalid(text, "too many decimal places");
      }
      d.fraction = d.fraction * 10 + (text[i] - '0');
      d.denominator *= 10;
    }
  }
  if (whole_digits == 0 && d.denominator == 1) {
    return Invalid(text, absl::StrCat("not a number; ", kAccepted));
  }
  d.length = i;
  return d;
}

}  // namespace

absl::StatusOr<int64_t> ParseSize(std::string_view text_std) {
  const absl::string_view text = Sv(text_std);
  if (text.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("empty size; ", kAccepted));
  }
  if (text[0] == '-') return Invalid(text, "a size cannot be negative");
  absl::StatusOr<Decimal> d = ParseDecimal(text);
  if (!d.ok()) return d.status();
  const absl::string_view number = text.substr(0, d->length);
  const absl::string_view suffix = text.substr(d->length);
  const std::optional<u128> multiplier = Multiplier(suffix);
  if (!multiplier) {
    return Invalid(text,
                   absl::StrCat("unknown suffix \"", suffix, "\"",
                                SuffixHint(number, suffix), "; ", kAccepted));
  }
  u128 bytes = d->whole * *multiplier;
  // Round a fractional byte up, as Kubernetes does for memory quantities.
  bytes += (d->fraction * *multiplier + d->denominator - 1) / d->denominator;
  if (bytes > kMaxBytes) return TooLarge(text);
  return static_cast<int64_t>(bytes);
}

std::string FormatSize(int64_t bytes) {
  static constexpr std::array<absl::string_view, 6> kUnits = {"Ei", "Pi", "Ti",
                                                              "Gi", "Mi", "Ki"};
  if (bytes < 0) return absl::StrCat(bytes);
  for (size_t i = 0; i < kUnits.size(); ++i) {
    const int64_t unit = int64_t{1} << (10 * (kUnits.size() - i));
    if (bytes < unit) continue;
    if (bytes % unit == 0) return absl::StrCat(bytes / unit, kUnits[i]);
    return absl::StrFormat("%.2f%s", static_cast<double>(bytes) / unit,
                           kUnits[i]);
  }
  return absl::StrCat(bytes);
}

}  // namespace corral::common
