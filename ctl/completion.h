// Shell completion scripts for corralctl, generated from its command line
// definition so they never drift from it.
#ifndef CORRAL_CTL_COMPLETION_H_
#define CORRAL_CTL_COMPLETION_H_

#include <CLI/CLI.hpp>
#include <string>

namespace corral::ctl {

// A bash script: `source <(corralctl completion bash)`.
std::string BashCompletion(const CLI::App& app);
// zsh: `source <(corralctl completion zsh)` (the bash script through
// bashcompinit).
std::string ZshCompletion(const CLI::App& app);
// fish: `corralctl completion fish | source`.
std::string FishCompletion(const CLI::App& app);

}  // namespace corral::ctl

#endif  // CORRAL_CTL_COMPLETION_H_
