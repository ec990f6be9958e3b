#include "ctl/completion.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/signals.h"

namespace corral::ctl {
namespace {

// "--follow -f ..." for the options of `app`; --help only when asked (the
// top level's covers every command).
std::string OptionWords(const CLI::App& app, bool help = true) {
  std::vector<std::string> words;
  for (const CLI::Option* o : app.get_options()) {
    if (o->get_positional()) continue;
    if (!help && o == app.get_help_ptr()) continue;
    for (const std::string& n : o->get_lnames()) words.push_back("--" + n);
    for (const std::string& n : o->get_snames()) words.push_back("-" + n);
  }
  return absl::StrJoin(words, " ");
}

}  // namespace

std::string BashCompletion(const CLI::App& app) {
  std::vector<std::string> names;
  std::string cases;
  for (const CLI::App* sub : app.get_subcommands({})) {
    names.push_back(sub->get_name());
    std::string extra;
    if (sub->get_name() == "scale") extra = " auto";
    if (sub->get_name() == "completion") extra = " bash";
    if (sub->get_name() == "signal") {
      extra =
          absl::StrCat(" $( [[ $((COMP_CWORD - i)) -eq 2 ]] && echo '",
                       absl::StrJoin(common::SignalShortNames(), " "), "')");
    }
    absl::StrAppend(&cases, "    ", sub->get_name(), ") opts=\"",
                    OptionWords(*sub, /*help=*/false), extra, "\" ;;\n");
  }
  return absl::StrCat(
      "# bash completion for corralctl. Load it with\n"
      "#   source <(corralctl completion bash)\n"
      "_corralctl() {\n"
      "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" "
      "prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
      "  local global=\"",
      OptionWords(app),
      "\"\n"
      "  case \"$prev\" in\n"
      "    -o|--output) COMPREPLY=($(compgen -W \"table json\" -- \"$cur\")); "
      "return ;;\n"
      "    --socket) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
      "    --timeout|--probe|--interval|--count|-n|--lines|--name|--service) "
      "return ;;\n"
      "  esac\n"
      "  local cmd=\"\" i opts=\"\"\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    case \"${COMP_WORDS[i]}\" in\n"
      "      -o|--output|--socket|--timeout) ((i++)) ;;\n"
      "      -*) ;;\n"
      "      *) cmd=\"${COMP_WORDS[i]}\"; break ;;\n"
      "    esac\n"
      "  done\n"
      "  if [[ -z \"$cmd\" ]]; then\n"
      "    COMPREPLY=($(compgen -W \"",
      absl::StrJoin(names, " "),
      " $global\" -- \"$cur\"))\n"
      "    return\n"
      "  fi\n"
      "  case \"$cmd\" in\n",
      cases,
      "  esac\n"
      "  COMPREPLY=($(compgen -W \"$opts $global\" -- \"$cur\"))\n"
      "}\n"
      "complete -F _corralctl corralctl\n");
}

}  // namespace corral::ctl
