// Reading the values of a PM2 ecosystem file (JSON text, as
// common/json.h keeps it) the way PM2 reads them. Pure functions.
#ifndef CORRAL_CTL_PM2_VALUES_H_
#define CORRAL_CTL_PM2_VALUES_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/json.h"

namespace corral::ctl {

// The apps of an ecosystem: {apps: [...]}, {apps: {...}}, [...] or one app.
absl::StatusOr<std::vector<common::JsonMembers>> EcosystemApps(
    absl::string_view json);

// "app NAME: KEY: VALUE is not EXPECTED" (InvalidArgument).
absl::Status BadValue(absl::string_view app, absl::string_view key,
                      absl::string_view raw, absl::string_view expected);

// A string, or a number as JavaScript prints it ("3000"); else nullopt.
std::optional<std::string> AsText(absl::string_view raw);

// JavaScript truthiness: false, null, 0 and "" are false.
bool Truthy(absl::string_view raw);

// Arguments as PM2 takes them: an array of strings, or one string split at
// blanks ('single' and "double" quotes group words).
absl::StatusOr<std::vector<std::string>> AsArgs(absl::string_view app,
                                                absl::string_view key,
                                                absl::string_view raw);

// Milliseconds as a number (or a numeric string), or a duration string
// ("5s", "1m").
absl::StatusOr<absl::Duration> AsMilliseconds(absl::string_view app,
                                              absl::string_view key,
                                              absl::string_view raw);

// max_memory_restart ("150M", "1G", "300K" in powers of 1024, or bytes) as
// --max-worker-memory reads it ("150Mi").
absl::StatusOr<std::string> AsPm2Size(absl::string_view app,
                                      absl::string_view raw);

// Adds the members of the object `raw` (env or env_NAME) to `env`,
// replacing earlier values of the same name. Values are strings as PM2
// gives them to the app; null is skipped with a note.
absl::Status MergeEnv(absl::string_view app, absl::string_view key,
                      const std::string* raw,
                      std::vector<std::pair<std::string, std::string>>& env,
                      std::vector<std::string>& notes);

// [A-Za-z_][A-Za-z0-9_]*
bool IsVariableName(absl::string_view name);

// The note for a PM2 key that has no corral equivalent (or nothing to do
// under corral), "" for one the translation reads itself, nullopt for a
// key PM2 does not have.
std::optional<std::string> NoEquivalentNote(absl::string_view key);

}  // namespace corral::ctl

#endif  // CORRAL_CTL_PM2_VALUES_H_
