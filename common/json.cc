#include "common/json.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace corral::common {
namespace {

constexpr int kMaxDepth = 64;

// A strict RFC 8259 reader over `s_`: strings are decoded, other values only
// checked and skipped (their text is taken from the positions).
class Reader {
 public:
  explicit Reader(absl::string_view text) : s_(text) {}

  size_t pos() const { return pos_; }
  absl::string_view Slice(size_t from) const {
    return s_.substr(from, pos_ - from);
  }
  bool AtEnd() {
    SkipSpace();
    return pos_ == s_.size();
  }
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' ||
                                s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool Consume(char c) {
    SkipSpace();
    if (pos_ >= s_.size() || s_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  char Peek() {
    SkipSpace();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }

  bool String(std::string* out) {
    if (!Consume('"')) return false;
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) return false;
      char e = s_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out->push_back(e);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u':
          if (!Unicode(out)) return false;
          break;
        default:
          return false;
      }
    }
    return false;
  }

  bool Value(int depth = 0) {
    if (depth > kMaxDepth) return false;
    char c = Peek();
    if (c == '"') {
      std::string ignored;
      return String(&ignored);
    }
    if (c == '{' || c == '[') return Container(depth);
    if (c == 't') return Word("true");
    if (c == 'f') return Word("false");
    if (c == 'n') return Word("null");
    return Number();
  }

 private:
  bool Container(int depth) {
    const bool object = s_[pos_++] == '{';
    const char close = object ? '}' : ']';
    if (Consume(close)) return true;
    do {
      if (object) {
        std::string ignored;
        if (!String(&ignored) || !Consume(':')) return false;
      }
      if (!Value(depth + 1)) return false;
    } while (Consume(','));
    return Consume(close);
  }

  bool Word(absl::string_view w) {
    if (s_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }

  bool Digits() {
    size_t start = pos_;
    while (pos_ < s_.size() && absl::ascii_isdigit(s_[pos_])) ++pos_;
    return pos_ > start;
  }

  bool Number() {
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
    } else if (!Digits()) {
      return false;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!Digits()) return false;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!Digits()) return false;
    }
    return true;
  }

  bool Hex4(uint32_t* v) {
    if (s_.size() - pos_ < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = absl::ascii_tolower(static_cast<unsigned char>(s_[pos_++]));
      int d = absl::ascii_isdigit(c)   ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                       : -1;
      if (d < 0) return false;
      *v = *v * 16 + static_cast<uint32_t>(d);
    }
    return true;
  }

  bool Unicode(std::string* out) {
    uint32_t cp = 0;
    if (!Hex4(&cp)) return false;
    if (cp >= 0xD800 && cp <= 0xDBFF && s_.substr(pos_, 2) == "\\u") {
      size_t save = pos_;
      pos_ += 2;
      uint32_t low = 0;
      if (Hex4(&low) && low >= 0xDC00 && low <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      } else {
        pos_ = save;
      }
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    return true;
  }

  absl::string_view s_;
  size_t pos_ = 0;
};

absl::Status NotAnObject(absl::string_view text) {
  return absl::InvalidArgumentError(
      absl::StrCat("not a JSON object: '", text.substr(0, 64),
                   text.size() > 64 ? "..." : "", "'"));
}

}  // namespace

absl::StatusOr<JsonMembers> ParseJsonObject(absl::string_view text) {
  Reader r(text);
  if (!r.Consume('{')) return NotAnObject(text);
  JsonMembers members;
  if (!r.Consume('}')) {
    do {
      JsonMember m;
      if (!r.String(&m.name) || !r.Consume(':')) return NotAnObject(text);
      r.SkipSpace();
      size_t from = r.pos();
      if (!r.Value(1)) return NotAnObject(text);
      m.value = std::string(r.Slice(from));
      members.push_back(std::move(m));
    } while (r.Consume(','));
    if (!r.Consume('}')) return NotAnObject(text);
  }
  if (!r.AtEnd()) return NotAnObject(text);
  return members;
}

absl::StatusOr<std::vector<std::string>> ParseJsonArray(
    absl::string_view text) {
  Reader r(text);
  auto not_array = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("not a JSON array: '", text.substr(0, 64),
                     text.size() > 64 ? "..." : "", "'"));
  };
  if (!r.Consume('[')) return not_array();
  std::vector<std::string> elements;
  if (!r.Consume(']')) {
    do {
      r.SkipSpace();
      size_t from = r.pos();
      if (!r.Value(1)) return not_array();
      elements.emplace_back(r.Slice(from));
    } while (r.Consume(','));
    if (!r.Consume(']')) return not_array();
  }
  if (!r.AtEnd()) return not_array();
  return elements;
}

std::string WriteJsonObject(const JsonMembers& members) {
  std::string out = "{";
  for (const JsonMember& m : members) {
    if (out.size() > 1) out.push_back(',');
    absl::StrAppend(&out, JsonQuote(m.name), ":", m.value);
  }
  out.push_back('}');
  return out;
}

bool IsJsonValue(absl::string_view text) {
  Reader r(text);
  return r.Value() && r.AtEnd();
}

std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
  return out;
}

const JsonMember* FindMember(const JsonMembers& members,
                             absl::string_view name) {
  const JsonMember* found = nullptr;
  for (const JsonMember& m : members) {
    if (m.name == name) found = &m;
  }
  return found;
}

void SetMember(JsonMembers& members, absl::string_view name,
               std::string value) {
  bool set = false;
  for (JsonMember& m : members) {
    if (m.name == name) {
      m.value = value;
      set = true;
    }
  }
  if (!set) members.push_back({std::string(name), std::move(value)});
}

void RemoveMember(JsonMembers& members, absl::string_view name) {
  members.erase(
      std::remove_if(members.begin(), members.end(),
                     [&](const JsonMember& m) { return m.name == name; }),
      members.end());
}

std::optional<double> JsonNumber(absl::string_view raw) {
  Reader r(raw);
  if (r.Peek() == '"' || r.Peek() == '{' || r.Peek() == '[')
    return std::nullopt;
  double v = 0;
  if (!IsJsonValue(raw) || !absl::SimpleAtod(raw, &v)) return std::nullopt;
  return v;
}

std::optional<std::string> JsonString(absl::string_view raw) {
  Reader r(raw);
  std::string out;
  if (!r.String(&out) || !r.AtEnd()) return std::nullopt;
  return out;
}

}  // namespace corral::common
