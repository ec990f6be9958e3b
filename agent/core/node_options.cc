#include "agent/core/node_options.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace corral::agent {
namespace {

constexpr absl::string_view kNodeOptions = "NODE_OPTIONS=";

// Node splits NODE_OPTIONS at spaces outside double quotes, and inside
// quotes a backslash escapes the next character (node_options.cc,
// ParseNodeOptionsEnvVar).
std::string Quoted(absl::string_view module) {
  if (module.find_first_of(" \t\"\\") == absl::string_view::npos) {
    return std::string(module);
  }
  std::string out = "\"";
  for (char c : module) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace

std::string NodeOptionsWithRequire(absl::string_view existing,
                                   absl::string_view module) {
  std::string out = absl::StrCat("--require ", Quoted(module));
  if (!existing.empty()) absl::StrAppend(&out, " ", existing);
  return out;
}

void AddNodeRequire(std::vector<std::string>& env, absl::string_view module) {
  for (std::string& entry : env) {
    if (absl::StartsWith(entry, kNodeOptions)) {
      entry = absl::StrCat(
          kNodeOptions,
          NodeOptionsWithRequire(
              absl::string_view(entry).substr(kNodeOptions.size()), module));
      return;
    }
  }
  env.push_back(absl::StrCat(kNodeOptions, NodeOptionsWithRequire("", module)));
}

}  // namespace corral::agent
