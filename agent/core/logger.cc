#include "agent/core/logger.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/supervisor/event_registry.h"

namespace corral::agent {
namespace {

void AppendJsonValue(std::string* out, const FieldValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) {
    absl::StrAppend(out, *i);
  } else if (const auto* d = std::get_if<double>(&v)) {
    absl::StrAppend(out, absl::StrFormat("%.3f", *d));
  } else if (const auto* b = std::get_if<bool>(&v)) {
    out->append(*b ? "true" : "false");
  } else {
    AppendJsonString(out, std::get<std::string>(v));
  }
}

}  // namespace

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not valid
// (overlong forms, surrogates and code points past U+10FFFF included).
static size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  size_t len;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
    return 0;
  }
  return len;
}

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      // Worker output is bytes; JSON is UTF-8. Invalid bytes become U+FFFD.
      if (size_t len = Utf8SequenceLength(s, i); len > 0) {
        out->append(s.substr(i, len));
        i += len;
      } else {
        out->append("\\ufffd");
        ++i;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppend(out, absl::StrFormat("\\u%04x", c));
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

std::string TimestampNow() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(),
                          absl::UTCTimeZone());
}

Logger::Logger(LogFormat format, LogWriter* writer)
    : format_(format), writer_(writer) {}

void Logger::AddObserver(std::function<void(const Event&)> observer) {
  observers_.push_back(std::move(observer));
}

void Logger::Emit(const Event& event) {
  for (const auto& observer : observers_) observer(event);
  std::string line;
  if (format_ == LogFormat::kJson) {
    line = absl::StrCat(R"({"ts":")", TimestampNow(),
                        R"(","src":"agent","level":")",
                        std::string(EventLevelName(event.level)),
                        R"(","event":")", event.name, R"(","msg":)");
    AppendJsonString(&line, event.msg);
    for (const auto& [key, value] : event.fields) {
      absl::StrAppend(&line, ",\"", key, "\":");
      AppendJsonValue(&line, value);
    }
    line += "}\n";
  } else {
    line = absl::StrCat(TimestampNow(), " agent ",
                        std::string(EventLevelName(event.level)), " ",
                        event.name, ": ", event.msg, "\n");
  }
  Write(FairLogQueue::kAgentSource, std::move(line));
  CheckAgainstRegistry(event);
}

void Logger::CheckAgainstRegistry(const Event& event) {
  const absl::Status s = CheckEvent(event);
  if (s.ok()) return;
  ++invalid_events_;
  // The event itself is logged all the same: a wrong field must not cost
  // the line. Once per name, so a bad event in a loop cannot flood stdout.
  if (!reported_invalid_.insert(event.name).second) return;
  const std::string problem(s.message());
  Emit(Event{Level::kError,
             "event_invalid",
             absl::StrCat("event does not match the registry: ", problem),
             {}}
           .With("name", event.name)
           .With("problem", problem));
}

void Logger::WorkerLine(const LineSource& source, std::string_view text,
                        bool cont) {
  std::string line;
  if (format_ == LogFormat::kJson) {
    line = absl::StrCat(R"({"ts":")", TimestampNow(),
                        R"(","src":"worker","worker":)", source.slot,
                        ",\"gen\":", source.generation, ",\"pid\":", source.pid,
                        R"(,"stream":")", source.stream, R"(","msg":)");
    AppendJsonString(&line, text);
    if (cont) line += R"(,"cont":true)";
    line += "}\n";
  } else {
    line = absl::StrCat(TimestampNow(), " worker ", source.slot, " pid ",
                        source.pid, " ", source.stream, cont ? "+ " : ": ",
                        absl::string_view(text.data(), text.size()), "\n");
  }
  Write(source.slot, std::move(line));
}

void Logger::ReportDropped() {
  uint64_t n = 0;
  for (const auto& [source, count] : writer_->TakeDropped()) {
    dropped_by_source_[source] += count;
    n += count;
  }
  if (n == 0) return;
  dropped_total_ += n;
  Emit(Event{
      Level::kWarn,
      "log_lines_dropped",
      absl::StrFormat("stdout is slow: %d log line(s) dropped", n),
      {}}.With("count", static_cast<int64_t>(n)));
}

void Logger::Write(int source, std::string line) {
  writer_->Write(source, std::move(line));
}

}  // namespace corral::agent
