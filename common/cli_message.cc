#include "common/cli_message.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace corral {
namespace {

// "N time(s)".
std::string Times(absl::string_view n) {
  return absl::StrCat(n, n == "1" ? " time" : " times");
}

// "NAME: REST" with NAME a flag or argument name (no spaces).
bool SplitName(absl::string_view message, absl::string_view* name,
               absl::string_view* rest) {
  const size_t colon = message.find(": ");
  if (colon == absl::string_view::npos || colon == 0) return false;
  *name = message.substr(0, colon);
  if (absl::StrContains(*name, ' ')) return false;
  *rest = message.substr(colon + 2);
  return true;
}

}  // namespace

std::string ReadableCliError(absl::string_view message) {
  absl::string_view m = absl::StripAsciiWhitespace(message);
  absl::string_view name;
  absl::string_view rest;
  if (SplitName(m, &name, &rest)) {
    // "--x: At Most 1 required but received 2"
    std::vector<absl::string_view> w = absl::StrSplit(rest, ' ');
    if (w.size() == 7 && w[0] == "At" && w[1] == "Most" && w[3] == "required" &&
        w[5] == "received") {
      return absl::StrCat(
          name, " is given ", Times(w[6]), "; give it ",
          w[2] == "1" ? "once" : absl::StrCat("at most ", Times(w[2])));
    }
    // "--x: At least 1 required but received 0"
    if (w.size() == 7 && w[0] == "At" && w[1] == "least" &&
        w[3] == "required" && w[5] == "received") {
      return absl::StrCat(name, " needs at least ", w[2], " value(s), got ",
                          w[6]);
    }
    // "--x: 1 required TEXT missing"
    if (w.size() == 4 && w[1] == "required" && w[3] == "missing") {
      return absl::StrCat(name, " needs a value (", name, "=VALUE)");
    }
    if (rest == "too many inputs for a flag") {
      return absl::StrCat(name, " takes no value");
    }
    return std::string(m);
  }
  if (absl::ConsumePrefix(&m, "Could not convert: ")) {
    const size_t eq = m.find(" = ");
    if (eq != absl::string_view::npos) {
      return absl::StrCat(m.substr(0, eq), ": '", m.substr(eq + 3),
                          "' is not a valid value");
    }
  }
  if (absl::StartsWith(m, "The value ") &&
      absl::StrContains(m, " is not an allowed value for ")) {
    absl::string_view v = m.substr(10);
    const size_t at = v.find(" is not an allowed value for ");
    return absl::StrCat(v.substr(at + 29), ": '", v.substr(0, at),
                        "' is not one of the allowed values");
  }
  if (m == "A subcommand is required" ||
      absl::StartsWith(m, "Requires at least 1 subcommand")) {
    return "give a command";
  }
  if (absl::ConsumePrefix(&m, "The following arguments were not expected: ") ||
      absl::ConsumePrefix(&m, "The following argument was not expected: ")) {
    return absl::StrCat("unexpected argument(s): ", m);
  }
  if (const size_t at = m.find(" excludes "); at != absl::string_view::npos) {
    return absl::StrCat(m.substr(0, at), " cannot be used with ",
                        m.substr(at + 10));
  }
  return std::string(m);
}

std::string RefusedCliValue(absl::string_view message) {
  absl::string_view m = absl::StripAsciiWhitespace(message);
  if (absl::ConsumePrefix(&m, "Could not convert: ")) {
    const size_t eq = m.find(" = ");
    if (eq != absl::string_view::npos) return std::string(m.substr(eq + 3));
  }
  // The agent's validators say "invalid --flag value 'VALUE': ...".
  if (absl::StartsWith(m, "invalid --")) {
    const size_t at = m.find(" value '");
    if (at != absl::string_view::npos) {
      absl::string_view v = m.substr(at + 8);
      const size_t end = v.find('\'');
      if (end != absl::string_view::npos) return std::string(v.substr(0, end));
    }
  }
  // corralctl's validators say "--flag: 'VALUE' is not ...".
  absl::string_view name;
  absl::string_view rest;
  if (SplitName(m, &name, &rest) && absl::ConsumePrefix(&rest, "'")) {
    const size_t end = rest.find('\'');
    if (end != absl::string_view::npos) return std::string(rest.substr(0, end));
  }
  return "";
}

}  // namespace corral
