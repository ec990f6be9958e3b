// Reads the agent's sources and checks them against the event registry both
// ways: every event name at an emit site is registered, every registered
// event is emitted somewhere, code that matches on event names uses
// registered ones, and a field added at an emit site with .With("key", ..)
// is declared for that event. (The Logger checks the same at run time;
// this catches an emit site no test reaches.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/supervisor/event_registry.h"

namespace corral::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

struct Site {
  std::string name;
  int line = 0;
  bool operator==(const Site&) const = default;
};

struct FieldUse {
  std::string event;
  std::string field;
  int line = 0;
  bool operator==(const FieldUse&) const = default;
};

void PrintTo(const Site& s, std::ostream* os) {
  *os << s.name << "@" << s.line;
}
void PrintTo(const FieldUse& f, std::ostream* os) {
  *os << f.event << "." << f.field << "@" << f.line;
}

struct Scan {
  std::vector<Site> emits;        // Event{.., "name"}, WorkerEvent(.., "name")
  std::vector<Site> consumers;    // name == "..." / name != "..."
  std::vector<Site> non_literal;  // an emit site whose name is not a literal
  std::vector<FieldUse> fields;   // .With("key", ..) after an emit site
};

// Two copies of a source, the same length (offsets and line numbers hold):
// `code` has its comments blanked; `bare` has the insides of its string and
// character literals blanked too, so a pattern found in `bare` is code.
struct Blanked {
  std::string code;
  std::string bare;
};

Blanked BlankComments(std::string_view text) {
  Blanked out{std::string(text), std::string(text)};
  auto blank = [](std::string& s, size_t from, size_t to) {
    for (size_t k = from; k < std::min(to, s.size()); ++k) {
      if (s[k] != '\n') s[k] = ' ';
    }
  };
  size_t i = 0;
  while (i < text.size()) {
    if (text.substr(i, 2) == "//" || text.substr(i, 2) == "/*") {
      const bool line = text[i + 1] == '/';
      const size_t end = line ? std::min(text.find('\n', i), text.size())
                              : std::min(text.find("*/", i + 2), text.size());
      const size_t stop = line ? end : end + 2;
      blank(out.code, i, stop);
      blank(out.bare, i, stop);
      i = stop;
    } else if (text.substr(i, 2) == "R\"") {
      const size_t open = std::min(text.find('(', i), text.size());
      const std::string close = absl::StrCat(
          ")", std::string(text.substr(i + 2, open - i - 2)), "\"");
      const size_t end = std::min(text.find(close, open), text.size());
      blank(out.bare, i + 2, end + close.size() - 1);
      i = end + close.size();
    } else if (text[i] == '"' || text[i] == '\'') {
      const char quote = text[i];
      size_t end = i + 1;
      while (end < text.size() && text[end] != quote) {
        end += text[end] == '\\' ? 2 : 1;
      }
      blank(out.bare, i + 1, end);
      i = end + 1;
    } else {
      ++i;
    }
  }
  return out;
}

int LineOf(std::string_view text, size_t offset) {
  return 1 + static_cast<int>(
                 std::count(text.begin(), text.begin() + offset, '\n'));
}

// The offset just past the first top-level comma from `from` in a `bare`
// text, or npos when the construction closes first (e.g. `Event{}`).
size_t AfterFirstArgument(std::string_view text, size_t from) {
  int depth = 0;
  for (size_t i = from; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '(' || c == '{' || c == '[') {
      ++depth;
    } else if (c == ')' || c == '}' || c == ']') {
      if (depth-- == 0) return std::string_view::npos;
    } else if (c == ',' && depth == 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// The identifier that ends just before `offset` (skipping blanks).
std::string_view TokenBefore(std::string_view text, size_t offset) {
  size_t end = offset;
  while (end > 0 && isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  size_t begin = end;
  while (begin > 0 && (isalnum(static_cast<unsigned char>(text[begin - 1])) ||
                       text[begin - 1] == '_')) {
    --begin;
  }
  return text.substr(begin, end - begin);
}

// The string literal that starts at `at` in `code` (a quote in `bare`), or
// nullopt when something else starts there.
std::optional<std::string> LiteralAt(const Blanked& src, size_t at) {
  if (at >= src.bare.size() || src.bare[at] != '"') return std::nullopt;
  const size_t end = src.bare.find('"', at + 1);
  return src.code.substr(at + 1, end - at - 1);
}

void ScanConstructions(const Blanked& src, Scan* scan,
                       std::vector<size_t>* site_offsets) {
  // `Event{`, `Event e{`, `WorkerEvent(`: the name is the second argument.
  static const std::regex kConstruct(
      R"(\bEvent(\s+[a-z_]\w*)?\s*\{|\bWorkerEvent\s*\()");
  const std::string& bare = src.bare;
  for (auto it = std::sregex_iterator(bare.begin(), bare.end(), kConstruct);
       it != std::sregex_iterator(); ++it) {
    const size_t at = it->position();
    if (at > 0 && bare[at - 1] == ':') continue;  // Supervisor::WorkerEvent
    const std::string_view before = TokenBefore(bare, at);
    // Declarations, not constructions: `struct Event {`, `Event WorkerEvent(`.
    if (before == "struct" || before == "class" || before == "Event") continue;
    size_t arg = AfterFirstArgument(bare, at + it->length());
    if (arg == std::string_view::npos) continue;
    while (arg < bare.size() &&
           isspace(static_cast<unsigned char>(bare[arg]))) {
      ++arg;
    }
    const int line = LineOf(bare, at);
    if (std::optional<std::string> name = LiteralAt(src, arg)) {
      scan->emits.push_back({*name, line});
      site_offsets->push_back(at);
    } else if (!bare.substr(arg).starts_with("std::move(name)")) {
      // (WorkerEvent()'s body passes its caller's name through.)
      const size_t end = std::min(bare.find_first_of(",}", arg), arg + 40);
      scan->non_literal.push_back({bare.substr(arg, end - arg), line});
    }
  }
}

// Each match of `pattern` (whose group 1 is a literal's content) that starts
// in code, not inside a literal, with its offset.
std::vector<std::pair<size_t, std::string>> Matches(const Blanked& src,
                                                    const std::regex& pattern) {
  std::vector<std::pair<size_t, std::string>> out;
  for (auto it =
           std::sregex_iterator(src.code.begin(), src.code.end(), pattern);
       it != std::sregex_iterator(); ++it) {
    const size_t at = it->position();
    if (src.bare[at] != src.code[at]) continue;  // inside a literal
    out.emplace_back(at, (*it)[1]);
  }
  return out;
}

Scan ScanSource(std::string_view text) {
  const Blanked src = BlankComments(text);
  Scan scan;
  std::vector<size_t> site_offsets;
  ScanConstructions(src, &scan, &site_offsets);
  static const std::regex kConsumer(R"(\bname\s*[!=]=\s*"([^"]*)\")");
  static const std::regex kAssign(R"(\.name\s*=\s*"([^"]*)\")");
  static const std::regex kWith(R"(\.With\(\s*"([^"]*)\")");
  for (const auto& [at, name] : Matches(src, kConsumer)) {
    scan.consumers.push_back({name, LineOf(src.code, at)});
  }
  for (const auto& [at, name] : Matches(src, kAssign)) {
    scan.emits.push_back({name, LineOf(src.code, at)});
  }
  for (const auto& [at, field] : Matches(src, kWith)) {
    // The nearest emit site before it, unless a function ends between them
    // (a `}` in column 0): then the field belongs to a helper such as
    // WorkerEvent(), which the run-time check covers.
    auto site = std::upper_bound(site_offsets.begin(), site_offsets.end(), at);
    if (site == site_offsets.begin()) continue;
    const size_t from = *std::prev(site);
    if (src.bare.substr(from, at - from).find("\n}") != std::string::npos) {
      continue;
    }
    const size_t index = std::prev(site) - site_offsets.begin();
    scan.fields.push_back(
        {scan.emits[index].name, field, LineOf(src.code, at)});
  }
  return scan;
}

// --- the scanner on small inputs -----------------------------------------

// (The snippets use an "src" raw string: clang-format would reformat "cc".)
TEST(EmitScanTest, FindsNamesAndTheirFields) {
  const Scan scan = ScanSource(R"src(
void A() {
  events_->Emit(Event{Level::kInfo, "drain_started", "x", {}}.With("a", 1));
  Event e{Level::kError,
          "reload_aborted",  // "not_an_event"
          absl::StrFormat("a, b"),
          {}};
  e.With("worker", int64_t{1}).With("reason", r);
  Emit(WorkerEvent(expected ? Level::kInfo : Level::kWarn, "worker_exited",
                   "m", p).With("expected", true));
}
Event Supervisor::WorkerEvent(Level level, std::string name) const {
  Event e{level, std::move(name), std::move(msg), {}};
  e.With("worker", int64_t{p.slot});
}
)src");
  EXPECT_THAT(scan.emits,
              ElementsAre(Site{"drain_started", 3}, Site{"reload_aborted", 4},
                          Site{"worker_exited", 9}));
  EXPECT_THAT(scan.fields,
              ElementsAre(FieldUse{"drain_started", "a", 3},
                          FieldUse{"reload_aborted", "worker", 8},
                          FieldUse{"reload_aborted", "reason", 8},
                          FieldUse{"worker_exited", "expected", 10}));
  EXPECT_THAT(scan.non_literal, IsEmpty());
}

TEST(EmitScanTest, IgnoresCommentsStringsAndDeclarations) {
  const Scan scan = ScanSource(R"src(
// Event{Level::kInfo, "in_a_comment", ...}
/* WorkerEvent(Level::kInfo, "in_a_block", p) */
struct Event {
  Event& With(std::string key, FieldValue value);
};
const char* kText = "Event{Level::kInfo, \"in_a_string\"";
const char kQuote = '"';
std::string json = R"({"level":")" + x;  // a raw string with quotes
Event WorkerEvent(Level level, std::string name, const Process& p) const;
Event none{};
)src");
  EXPECT_THAT(scan.emits, IsEmpty());
  EXPECT_THAT(scan.non_literal, IsEmpty());
  EXPECT_THAT(scan.fields, IsEmpty());
}

TEST(EmitScanTest, FlagsANameThatIsNotALiteral) {
  const Scan scan = ScanSource(R"src(
void A() { logger_.Emit(Event{Level::kInfo, kName, "m", {}}); }
)src");
  EXPECT_THAT(scan.non_literal, ElementsAre(Site{"kName", 2}));
  EXPECT_THAT(scan.emits, IsEmpty());
}

TEST(EmitScanTest, FindsConsumersAndAssignedNames) {
  const Scan scan = ScanSource(R"src(
if (e.name == "reload_finished" || e.name != "reload_aborted") {}
e.name = "scaled";
)src");
  EXPECT_THAT(scan.consumers, ElementsAre(Site{"reload_finished", 2},
                                          Site{"reload_aborted", 2}));
  EXPECT_THAT(scan.emits, ElementsAre(Site{"scaled", 3}));
}

// --- the agent's sources ---------------------------------------------------

struct TreeScan {
  std::set<std::string> emitted;
  std::vector<std::string> problems;
  int files = 0;
};

TreeScan ScanAgentTree() {
  const std::filesystem::path root = std::filesystem::canonical(
      std::filesystem::path(CORRAL_TEST_FIXTURES) / ".." / "..");
  TreeScan tree;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(root / "agent")) {
    const std::string ext = entry.path().extension();
    if (!entry.is_regular_file() || (ext != ".cc" && ext != ".h")) continue;
    ++tree.files;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    const Scan scan = ScanSource(text.str());
    const std::string file =
        std::filesystem::relative(entry.path(), root).string();
    auto where = [&file](int line) { return absl::StrCat(file, ":", line); };
    for (const Site& s : scan.emits) {
      tree.emitted.insert(s.name);
      if (FindEventSpec(s.name) == nullptr) {
        tree.problems.push_back(absl::StrCat(where(s.line), ": event '", s.name,
                                             "' is not in the registry"));
      }
    }
    for (const Site& s : scan.consumers) {
      if (FindEventSpec(s.name) == nullptr) {
        tree.problems.push_back(
            absl::StrCat(where(s.line), ": compares with '", s.name,
                         "', which is not a registered event"));
      }
    }
    for (const Site& s : scan.non_literal) {
      tree.problems.push_back(absl::StrCat(
          where(s.line), ": event name '", s.name,
          "' is not a string literal; write the name at the emit site so "
          "this scan can check it"));
    }
    for (const FieldUse& f : scan.fields) {
      const EventSpec* spec = FindEventSpec(f.event);
      if (spec != nullptr && spec->FindField(f.field) == nullptr) {
        tree.problems.push_back(
            absl::StrCat(where(f.line), ": field '", f.field,
                         "' is not declared for event '", f.event, "'"));
      }
    }
  }
  return tree;
}

TEST(EmitScanTest, EveryEmittedEventIsRegisteredWithItsFields) {
  const TreeScan tree = ScanAgentTree();
  ASSERT_GT(tree.files, 20);
  EXPECT_THAT(tree.problems, IsEmpty())
      << absl::StrJoin(tree.problems, "\n")
      << "\n(declare events in agent/supervisor/event_registry.cc, then run "
         "build/tools/corral-event-doc --write docs/agent-contract.md)";
}

TEST(EmitScanTest, EveryRegisteredEventIsEmitted) {
  const TreeScan tree = ScanAgentTree();
  std::vector<std::string> unused;
  for (const EventSpec& spec : EventRegistry()) {
    if (!tree.emitted.contains(std::string(spec.name))) {
      unused.push_back(std::string(spec.name));
    }
  }
  EXPECT_THAT(unused, IsEmpty())
      << "registered but emitted nowhere under agent/: "
      << absl::StrJoin(unused, ", ");
}

}  // namespace
}  // namespace corral::agent
