#include "agent/supervisor/event_doc.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/supervisor/event_registry.h"

namespace corral::agent {
namespace {

// Debian's Abseil has its own string_view type; StrCat takes only that one.
absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }

std::string Levels(LevelSet levels) {
  std::vector<absl::string_view> names;
  for (Level level : {Level::kInfo, Level::kWarn, Level::kError}) {
    if (levels & LevelBit(level)) names.push_back(Sv(EventLevelName(level)));
  }
  return absl::StrJoin(names, ", ");
}

// "`ready_ms` double (spawn to READY)"; "?" after the type marks a field
// that only some instances carry.
std::string Field(const FieldSpec& f) {
  std::string out = absl::StrCat(
      "`", Sv(f.name), "` ", Sv(FieldTypeName(f.type)), f.optional ? "?" : "");
  if (!f.note.empty()) absl::StrAppend(&out, " (", Sv(f.note), ")");
  return out;
}

struct Section {
  size_t begin;  // first byte after the begin marker's line
  size_t end;    // first byte of the end marker
};

absl::StatusOr<Section> FindSection(std::string_view doc) {
  const size_t begin = doc.find(kEventTableBegin);
  if (begin == std::string_view::npos) {
    return absl::NotFoundError(
        absl::StrCat("no line '", Sv(kEventTableBegin), "'"));
  }
  const size_t line_end = doc.find('\n', begin);
  const size_t end = doc.find(kEventTableEnd, begin);
  if (end == std::string_view::npos || line_end == std::string_view::npos ||
      line_end > end) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no line '", Sv(kEventTableEnd), "' after the begin marker"));
  }
  return Section{line_end + 1, end};
}

}  // namespace

std::string EventTableMarkdown() {
  std::string out =
      "| event | level | fields | meaning |\n"
      "| --- | --- | --- | --- |\n";
  for (const EventSpec& spec : EventRegistry()) {
    std::vector<std::string> fields;
    for (const FieldSpec& f : spec.Fields()) fields.push_back(Field(f));
    absl::StrAppend(&out, "| `", Sv(spec.name), "` | ", Levels(spec.levels),
                    " | ", absl::StrJoin(fields, ", "), " | ", Sv(spec.meaning),
                    " |\n");
  }
  return out;
}

absl::StatusOr<std::string> ExtractEventTable(std::string_view doc) {
  absl::StatusOr<Section> s = FindSection(doc);
  if (!s.ok()) return s.status();
  return std::string(doc.substr(s->begin, s->end - s->begin));
}

absl::StatusOr<std::string> ReplaceEventTable(std::string_view doc,
                                              std::string_view table) {
  absl::StatusOr<Section> s = FindSection(doc);
  if (!s.ok()) return s.status();
  return absl::StrCat(Sv(doc.substr(0, s->begin)), Sv(table),
                      Sv(doc.substr(s->end)));
}

}  // namespace corral::agent
