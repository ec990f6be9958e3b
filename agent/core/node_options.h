// NODE_OPTIONS with one more `--require`, for --node-register.
#ifndef CORRAL_AGENT_CORE_NODE_OPTIONS_H_
#define CORRAL_AGENT_CORE_NODE_OPTIONS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace corral::agent {

// `--require MODULE` first, then `existing` (the user's own NODE_OPTIONS,
// kept as they wrote them). MODULE is quoted as Node's NODE_OPTIONS parser
// reads it when it holds a space, a quote or a backslash.
std::string NodeOptionsWithRequire(absl::string_view existing,
                                   absl::string_view module);

// Sets NODE_OPTIONS in `env` ("KEY=VALUE" entries) to
// NodeOptionsWithRequire of its current value (or of nothing).
void AddNodeRequire(std::vector<std::string>& env, absl::string_view module);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_CORE_NODE_OPTIONS_H_
