#include "agent/supervisor/ipc_message.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace corral::agent {
namespace {

// Node's messages nest little; a deeper line is not for us anyway.
constexpr int kMaxDepth = 64;

// A strict reader of one JSON text (RFC 8259) that decodes strings and
// skips every other value: enough to find two string members of an object
// without building a document.
class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : s_(text) {}

  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' ||
                                s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool AtEnd() const { return pos_ == s_.size(); }
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool Consume(char c) {
    SkipSpace();
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }

  // A string at the cursor, decoded to UTF-8.
  bool ReadString(std::string* out) {
    SkipSpace();
    if (Peek() != '"') return false;
    ++pos_;
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
          if (!ReadEscapedCodePoint(out)) return false;
          break;
        default:
          return false;
      }
    }
    return false;
  }

  // Any value at the cursor, discarded.
  bool SkipValue(int depth = 0) {
    if (depth > kMaxDepth) return false;
    SkipSpace();
    char c = Peek();
    if (c == '"') {
      std::string ignored;
      return ReadString(&ignored);
    }
    if (c == '{' || c == '[') return SkipContainer(depth);
    if (c == 't') return Literal("true");
    if (c == 'f') return Literal("false");
    if (c == 'n') return Literal("null");
    return SkipNumber();
  }

 private:
  bool SkipContainer(int depth) {
    const bool object = s_[pos_++] == '{';
    const char close = object ? '}' : ']';
    if (Consume(close)) return true;
    do {
      if (object) {
        std::string ignored;
        if (!ReadString(&ignored) || !Consume(':')) return false;
      }
      if (!SkipValue(depth + 1)) return false;
    } while (Consume(','));
    return Consume(close);
  }

  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool Digits() {
    size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  bool SkipNumber() {
    if (Peek() == '-') ++pos_;
    if (Peek() == '0') {
      ++pos_;
    } else if (!Digits()) {
      return false;
    }
    if (Peek() == '.') {
      ++pos_;
      if (!Digits()) return false;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (!Digits()) return false;
    }
    return true;
  }

  bool Hex4(uint32_t* v) {
    if (s_.size() - pos_ < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      uint32_t d = c >= '0' && c <= '9'   ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : 16;
      if (d == 16) return false;
      *v = *v * 16 + d;
    }
    return true;
  }

  // \uXXXX (the "\u" read), with a surrogate pair when one follows.
  bool ReadEscapedCodePoint(std::string* out) {
    uint32_t cp = 0;
    if (!Hex4(&cp)) return false;
    if (cp >= 0xD800 && cp <= 0xDBFF && s_.substr(pos_, 2) == "\\u") {
      size_t save = pos_;
      pos_ += 2;
      uint32_t low = 0;
      if (Hex4(&low) && low >= 0xDC00 && low <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      } else {
        pos_ = save;  // a lone high surrogate: kept as U+FFFD below
      }
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
    AppendUtf8(cp, out);
    return true;
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
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
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// A member the agent reads: absent, a string, or some other value.
struct StringMember {
  std::optional<std::string> value;
  bool present_not_string = false;

  void Set(std::string v) {
    value = std::move(v);
    present_not_string = false;
  }
  void SetOther() {
    value.reset();
    present_not_string = true;
  }
};

// The members of an object line that matter to the agent (last one wins).
struct CorralMembers {
  StringMember corral;
  StringMember text;
};

// Reads an object whose '{' is at the cursor.
bool ReadMembers(JsonReader& r, CorralMembers* m) {
  r.Consume('{');
  if (r.Consume('}')) return true;
  do {
    std::string key;
    if (!r.ReadString(&key) || !r.Consume(':')) return false;
    StringMember* wanted = key == "corral" ? &m->corral
                           : key == "text" ? &m->text
                                           : nullptr;
    r.SkipSpace();
    if (wanted != nullptr && r.Peek() == '"') {
      std::string value;
      if (!r.ReadString(&value)) return false;
      wanted->Set(std::move(value));
      continue;
    }
    if (!r.SkipValue(1)) return false;
    if (wanted != nullptr) wanted->SetOther();
  } while (r.Consume(','));
  return r.Consume('}');
}

absl::Status NotJson(std::string_view line) {
  return absl::InvalidArgumentError(absl::StrCat(
      "IPC line is not JSON: '", std::string(line.substr(0, 64)), "'"));
}

absl::StatusOr<std::optional<NotifyMessage>> FromMembers(
    const CorralMembers& m) {
  if (m.corral.present_not_string) {
    return absl::InvalidArgumentError(
        "IPC message: \"corral\" must be a string");
  }
  if (!m.corral.value) return std::nullopt;  // an object for someone else
  NotifyMessage msg;
  const std::string& verb = *m.corral.value;
  if (verb == "ready") {
    msg.ready = true;
  } else if (verb == "watchdog") {
    msg.watchdog = true;
  } else if (verb == "stopping") {
    msg.stopping = true;
  } else if (verb == "status") {
    if (!m.text.value) {
      return absl::InvalidArgumentError(
          "IPC message {\"corral\":\"status\"} needs a string \"text\"");
    }
    if (m.text.value->size() > kMaxNotifyMessage) {
      return absl::InvalidArgumentError(absl::StrCat(
          "IPC status text of ", m.text.value->size(), " bytes is over the ",
          kMaxNotifyMessage, " byte limit"));
    }
    msg.status = *m.text.value;
  } else {
    return std::nullopt;  // a newer verb: ignored, like unknown sd keys
  }
  return msg;
}

}  // namespace

absl::StatusOr<std::optional<NotifyMessage>> ParseIpcMessage(
    std::string_view line) {
  JsonReader r(line);
  r.SkipSpace();
  if (r.Peek() == '"') {
    std::string word;
    if (!r.ReadString(&word)) return NotJson(line);
    r.SkipSpace();
    if (!r.AtEnd()) return NotJson(line);
    if (word != "ready") return std::nullopt;
    NotifyMessage msg;
    msg.ready = true;
    return msg;
  }
  if (r.Peek() != '{') {
    if (!r.SkipValue()) return NotJson(line);
    r.SkipSpace();
    if (!r.AtEnd()) return NotJson(line);
    return std::nullopt;  // a number, array, ... from the app
  }
  CorralMembers members;
  if (!ReadMembers(r, &members)) return NotJson(line);
  r.SkipSpace();
  if (!r.AtEnd()) return NotJson(line);
  return FromMembers(members);
}

}  // namespace corral::agent
