// The event registry: its entries are well formed, CheckEvent() catches every
// kind of mismatch, the Logger reports an event that does not match, and
// docs/agent-contract.md carries exactly the generated event table.
#include "agent/supervisor/event_registry.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "agent/core/logger.h"
#include "agent/os/log_writer.h"
#include "agent/supervisor/event_doc.h"

namespace corral::agent {
namespace {

using ::testing::HasSubstr;

std::filesystem::path SourceRoot() {
  return std::filesystem::canonical(
      std::filesystem::path(CORRAL_TEST_FIXTURES) / ".." / "..");
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// --- the registry itself ----------------------------------------------------

TEST(EventRegistryTest, EntriesAreWellFormed) {
  std::set<std::string_view> names;
  // The JSON line already has these keys; a field must not repeat one.
  const std::set<std::string_view> envelope = {"ts", "src", "level", "event",
                                               "msg"};
  for (const EventSpec& spec : EventRegistry()) {
    SCOPED_TRACE(std::string(spec.name));
    EXPECT_TRUE(names.insert(spec.name).second) << "declared twice";
    EXPECT_FALSE(spec.name.empty());
    for (char c : spec.name) EXPECT_TRUE(islower(c) || c == '_') << c;
    EXPECT_NE(spec.levels, 0) << "no level";
    EXPECT_FALSE(spec.meaning.empty());
    // A '|' would split the generated markdown cell.
    EXPECT_EQ(spec.meaning.find('|'), std::string_view::npos);
    std::set<std::string_view> fields;
    for (const FieldSpec& f : spec.Fields()) {
      EXPECT_TRUE(fields.insert(f.name).second) << f.name << " twice";
      EXPECT_FALSE(envelope.contains(f.name)) << f.name;
      EXPECT_EQ(f.note.find('|'), std::string_view::npos) << f.name;
    }
    // Nothing after the first unused entry: it would be invisible.
    for (size_t i = spec.Fields().size(); i < spec.fields.size(); ++i) {
      EXPECT_TRUE(spec.fields[i].name.empty()) << "field after a gap";
    }
  }
  EXPECT_GE(names.size(), 40u);
}

TEST(EventRegistryTest, FindsEntriesByName) {
  const EventSpec* spec = FindEventSpec("worker_ready");
  ASSERT_NE(spec, nullptr);
  EXPECT_EQ(spec->levels, kInfo);
  ASSERT_NE(spec->FindField("ready_ms"), nullptr);
  EXPECT_EQ(spec->FindField("ready_ms")->type, FieldType::kDouble);
  EXPECT_EQ(spec->FindField("nope"), nullptr);
  EXPECT_EQ(FindEventSpec("no_such_event"), nullptr);
}

// --- CheckEvent
// ---------------------------------------------------------------

Event WorkerReady() {
  return Event{Level::kInfo, "worker_ready", "worker 0 ready", {}}
      .With("worker", int64_t{0})
      .With("gen", int64_t{1})
      .With("pid", int64_t{42})
      .With("ready_ms", 1.5);
}

TEST(CheckEventTest, AcceptsAMatchingEvent) {
  EXPECT_TRUE(CheckEvent(WorkerReady()).ok());
  // Optional fields may be absent or present; any declared level goes.
  Event exited{Level::kWarn, "worker_exited", "exited", {}};
  exited.With("worker", int64_t{0})
      .With("gen", int64_t{1})
      .With("pid", int64_t{42})
      .With("expected", false);
  EXPECT_TRUE(CheckEvent(exited).ok());
  exited.With("signal", std::string("SIGKILL"));
  exited.level = Level::kInfo;
  EXPECT_TRUE(CheckEvent(exited).ok());
}

TEST(CheckEventTest, RejectsAnUnknownName) {
  absl::Status s = CheckEvent(Event{Level::kInfo, "worker_readdy", "x", {}});
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(s.message(), HasSubstr("'worker_readdy': not in the registry"));
}

TEST(CheckEventTest, RejectsAnUndeclaredLevel) {
  Event e = WorkerReady();
  e.level = Level::kWarn;
  EXPECT_THAT(CheckEvent(e).message(), HasSubstr("level warn is not declared"));
}

TEST(CheckEventTest, RejectsAnUndeclaredField) {
  Event e = WorkerReady();
  e.With("color", std::string("blue"));
  EXPECT_THAT(CheckEvent(e).message(),
              HasSubstr("field 'color' is not declared"));
}

TEST(CheckEventTest, RejectsAFieldOfTheWrongType) {
  Event e{Level::kInfo, "worker_ready", "ready", {}};
  e.With("worker", int64_t{0})
      .With("gen", int64_t{1})
      .With("pid", int64_t{42})
      .With("ready_ms", int64_t{2});
  EXPECT_THAT(CheckEvent(e).message(),
              HasSubstr("field 'ready_ms' is int, declared double"));
  // A const char* must become a string, not a bool.
  Event sig{Level::kInfo, "signal_received", "got it", {}};
  sig.With("signal", "SIGHUP");
  EXPECT_TRUE(CheckEvent(sig).ok()) << CheckEvent(sig);
}

TEST(CheckEventTest, RejectsAMissingRequiredField) {
  Event e{Level::kInfo, "worker_ready", "ready", {}};
  e.With("worker", int64_t{0}).With("gen", int64_t{1}).With("pid", int64_t{4});
  EXPECT_THAT(CheckEvent(e).message(),
              HasSubstr("required field 'ready_ms' missing"));
}

TEST(CheckEventTest, RejectsARepeatedFieldAndAnEmptyMessage) {
  Event e = WorkerReady();
  e.With("pid", int64_t{43});
  EXPECT_THAT(CheckEvent(e).message(), HasSubstr("field 'pid' appears twice"));
  Event quiet = WorkerReady();
  quiet.msg.clear();
  EXPECT_THAT(CheckEvent(quiet).message(), HasSubstr("empty msg"));
}

// --- the Logger checks what it writes ----------------------------------------

// A Logger writing JSON into a pipe; Lines() flushes and reads what came out.
class LoggerCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(pipe2(fds_, O_CLOEXEC | O_NONBLOCK), 0);
    writer_ = std::make_unique<LogWriter>(fds_[1], 1 << 20);
    logger_ = std::make_unique<Logger>(LogFormat::kJson, writer_.get());
  }
  void TearDown() override {
    logger_.reset();
    writer_.reset();
    close(fds_[0]);
    close(fds_[1]);
  }
  std::vector<std::string> Lines() {
    writer_->Flush(std::chrono::seconds(5));
    char buf[65536];
    const ssize_t n = read(fds_[0], buf, sizeof(buf));
    if (n <= 0) return {};
    return absl::StrSplit(absl::string_view(buf, n), '\n', absl::SkipEmpty());
  }

  int fds_[2] = {-1, -1};
  std::unique_ptr<LogWriter> writer_;
  std::unique_ptr<Logger> logger_;
};

TEST_F(LoggerCheckTest, AMatchingEventIsLoggedAlone) {
  logger_->Emit(WorkerReady());
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr(R"("event":"worker_ready")"));
  EXPECT_EQ(logger_->invalid_events(), 0u);
}

TEST_F(LoggerCheckTest, AMismatchIsLoggedAndReportedOncePerName) {
  Event e = WorkerReady();
  e.With("color", std::string("blue"));
  logger_->Emit(e);
  logger_->Emit(e);
  std::vector<std::string> lines = Lines();
  // The event itself (twice) and one report, right after the first.
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0], HasSubstr(R"("color":"blue")"));
  EXPECT_THAT(lines[1],
              HasSubstr(R"("level":"error","event":"event_invalid")"));
  EXPECT_THAT(lines[1], HasSubstr(R"("name":"worker_ready")"));
  EXPECT_THAT(lines[1], HasSubstr("field 'color' is not declared"));
  EXPECT_THAT(lines[2], HasSubstr(R"("event":"worker_ready")"));
  EXPECT_EQ(logger_->invalid_events(), 2u);
}

TEST_F(LoggerCheckTest, TheAgentsOwnLogLinesDroppedEventMatches) {
  // A writer that cannot take anything: ReportDropped() must emit a valid
  // log_lines_dropped.
  LogWriter tiny(fds_[1], /*max_pending_bytes=*/0);
  Logger logger(LogFormat::kJson, &tiny);
  logger.Emit(WorkerReady());  // dropped
  logger.ReportDropped();
  EXPECT_EQ(logger.dropped_total(), 1u);
  EXPECT_EQ(logger.invalid_events(), 0u);
}

// --- docs/agent-contract.md
// ---------------------------------------------------

// "| `name` | ..." rows of a markdown table, by event name.
std::map<std::string, std::string> RowsByName(std::string_view table) {
  std::map<std::string, std::string> rows;
  std::istringstream lines{std::string(table)};
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("| `")) continue;
    const size_t end = line.find('`', 3);
    if (end == std::string::npos) continue;
    rows[line.substr(3, end - 3)] = line;
  }
  return rows;
}

// What differs between the doc's table and the generated one, by event.
std::vector<std::string> TableDrift(std::string_view doc_table,
                                    std::string_view generated) {
  std::vector<std::string> drift;
  const auto doc = RowsByName(doc_table);
  const auto want = RowsByName(generated);
  for (const auto& [name, row] : want) {
    auto it = doc.find(name);
    if (it == doc.end()) {
      drift.push_back("missing from the doc: " + name);
    } else if (it->second != row) {
      drift.push_back("differs: " + name + "\n  doc:      " + it->second +
                      "\n  registry: " + row);
    }
  }
  for (const auto& [name, row] : doc) {
    if (!want.contains(name)) drift.push_back("in the doc only: " + name);
  }
  if (drift.empty() && doc_table != generated) {
    drift.push_back("same rows, other text (header, order or spacing)");
  }
  return drift;
}

TEST(EventDocTest, TheContractListsExactlyTheRegisteredEvents) {
  const std::filesystem::path path =
      SourceRoot() / "docs" / "agent-contract.md";
  absl::StatusOr<std::string> table = ExtractEventTable(ReadFile(path));
  ASSERT_TRUE(table.ok()) << path << ": " << table.status();
  std::vector<std::string> drift = TableDrift(*table, EventTableMarkdown());
  EXPECT_TRUE(drift.empty())
      << path << " does not match the event registry:\n"
      << absl::StrJoin(drift, "\n")
      << "\nregenerate it: build/tools/corral-event-doc --write "
         "docs/agent-contract.md";
}

TEST(EventDocTest, DriftNamesMissingExtraAndChangedEvents) {
  const std::string generated = EventTableMarkdown();
  const std::map<std::string, std::string> rows = RowsByName(generated);
  ASSERT_EQ(rows.size(), EventRegistry().size());
  std::string doc = generated;
  // Drop reload_refused, change worker_ready's level, add a stale event.
  const std::string& dropped = rows.at("reload_refused");
  doc.erase(doc.find(dropped), dropped.size() + 1);
  const std::string& ready = rows.at("worker_ready");
  doc.replace(doc.find(ready), ready.size(),
              absl::StrReplaceAll(ready, {{"| info |", "| warn |"}}));
  doc += "| `worker_teleported` | info |  | gone |\n";
  std::vector<std::string> drift = TableDrift(doc, generated);
  ASSERT_EQ(drift.size(), 3u) << absl::StrJoin(drift, "\n");
  EXPECT_EQ(drift[0], "missing from the doc: reload_refused");
  EXPECT_THAT(drift[1], HasSubstr("differs: worker_ready"));
  EXPECT_EQ(drift[2], "in the doc only: worker_teleported");
  EXPECT_THAT(TableDrift(generated + "\n", generated),
              testing::ElementsAre(HasSubstr("other text")));
}

TEST(EventDocTest, ReplacesOnlyTheMarkedSection) {
  const std::string begin(kEventTableBegin), end(kEventTableEnd);
  const std::string doc =
      absl::StrCat("# title\n", begin, "\nold table\n", end, "\n\n## next\n");
  absl::StatusOr<std::string> updated = ReplaceEventTable(doc, "| new |\n");
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(*updated, absl::StrCat("# title\n", begin, "\n| new |\n", end,
                                   "\n\n## next\n"));
  EXPECT_EQ(*ExtractEventTable(*updated), "| new |\n");
  EXPECT_TRUE(absl::IsNotFound(ExtractEventTable("no markers").status()));
  EXPECT_FALSE(ExtractEventTable(absl::StrCat(begin, "\nno end\n")).ok());
}

}  // namespace
}  // namespace corral::agent
