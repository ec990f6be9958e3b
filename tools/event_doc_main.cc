// corral-event-doc: the event table of docs/agent-contract.md, from the
// event registry (agent/supervisor/event_registry.cc).
//
//   corral-event-doc                   print the table
//   corral-event-doc --write FILE      replace the table between FILE's
//                                      markers (docs/agent-contract.md)
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "agent/supervisor/event_doc.h"

namespace {

int Write(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "corral-event-doc: cannot read %s\n", path.c_str());
    return 1;
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  absl::StatusOr<std::string> updated = corral::agent::ReplaceEventTable(
      doc, corral::agent::EventTableMarkdown());
  if (!updated.ok()) {
    std::fprintf(stderr, "corral-event-doc: %s: %s\n", path.c_str(),
                 std::string(updated.status().message()).c_str());
    return 1;
  }
  if (*updated == doc) {
    std::printf("%s: event table is up to date\n", path.c_str());
    return 0;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << *updated;
  if (!out.flush()) {
    std::fprintf(stderr, "corral-event-doc: cannot write %s\n", path.c_str());
    return 1;
  }
  std::printf("%s: event table rewritten\n", path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 1) {
    std::fputs(corral::agent::EventTableMarkdown().c_str(), stdout);
    return 0;
  }
  if (argc == 3 && std::string_view(argv[1]) == "--write")
    return Write(argv[2]);
  std::fprintf(stderr,
               "usage: corral-event-doc [--write docs/agent-contract.md]\n");
  return 2;
}
