// Where the @corral/node register module is, for --node-register: the
// agent adds `--require <it>` to NODE_OPTIONS so an unmodified Node app
// (`app.listen(3000)`) takes the agent's socket, says READY and drains.
#ifndef CORRAL_AGENT_OS_NODE_REGISTER_H_
#define CORRAL_AGENT_OS_NODE_REGISTER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace corral::agent {

// The package name Node resolves from the worker's working directory (the
// app's node_modules) when no installed copy is found.
inline constexpr char kNodeRegisterModule[] = "@corral/node/register";

// Where an installed agent's copy lives, relative to the folder of the
// corral-agent binary (`cmake --install` puts it there: PREFIX/bin and
// PREFIX/lib/corral/node).
inline constexpr char kNodeRegisterBesideAgent[] =
    "../lib/corral/node/register.js";

// What `--require` should name for a --node-register value:
// - "auto": the installed copy beside the agent when that file exists,
//   else kNodeRegisterModule;
// - anything else is a path to register.js, relative to the agent's
//   working directory (which workers inherit): it must be a readable
//   regular file; the result is absolute.
// Errors name the flag and the value.
absl::StatusOr<std::string> ResolveNodeRegister(absl::string_view value);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_NODE_REGISTER_H_
