// Shell completion scripts for corralctl, generated from its command line
// definition so they never drift from it.
#ifndef CORRAL_CTL_COMPLETION_H_
#define CORRAL_CTL_COMPLETION_H_

#include <CLI/CLI.hpp>
#include <string>

namespace corral::ctl {

// A bash script: `source <(corralctl completion bash)`. zsh can load it
// after `autoload -U bashcompinit && bashcompinit`.
std::string BashCompletion(const CLI::App& app);

}  // namespace corral::ctl

#endif  // CORRAL_CTL_COMPLETION_H_
