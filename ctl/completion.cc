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

// Words that may follow a command besides its flags.
std::string CommandWords(const std::string& name) {
  if (name == "scale") return "auto";
  if (name == "completion") return "bash zsh fish";
  return "";
}

// 'text' for fish: single quotes, with ' and \\ escaped.
std::string FishQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

std::string BashCompletion(const CLI::App& app) {
  std::vector<std::string> names;
  std::string cases;
  for (const CLI::App* sub : app.get_subcommands({})) {
    names.push_back(sub->get_name());
    std::string extra;
    if (!CommandWords(sub->get_name()).empty()) {
      extra = " " + CommandWords(sub->get_name());
    }
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

std::string ZshCompletion(const CLI::App& app) {
  // zsh runs bash completion functions through bashcompinit: one script,
  // so the two never differ.
  return absl::StrCat(
      "#compdef corralctl\n"
      "# zsh completion for corralctl. Load it with\n"
      "#   source <(corralctl completion zsh)\n"
      "autoload -U +X compinit && compinit\n"
      "autoload -U +X bashcompinit && bashcompinit\n",
      BashCompletion(app));
}

std::string FishCompletion(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands({})) {
    names.push_back(sub->get_name());
  }
  const std::string seen =
      absl::StrCat("__fish_seen_subcommand_from ", absl::StrJoin(names, " "));
  std::string out =
      "# fish completion for corralctl. Load it with\n"
      "#   corralctl completion fish | source\n"
      "complete -c corralctl -f\n";
  // Global options, anywhere on the line.
  for (const CLI::Option* o : app.get_options()) {
    if (o->get_positional()) continue;
    std::string line = "complete -c corralctl";
    for (const std::string& n : o->get_lnames())
      absl::StrAppend(&line, " -l ", n);
    for (const std::string& n : o->get_snames())
      absl::StrAppend(&line, " -s ", n);
    // -x: takes a value, not a file; --socket takes a file (-r -F).
    if (o->get_single_name() == "socket") {
      absl::StrAppend(&line, " -r -F");
    } else if (o->get_expected_min() > 0) {
      absl::StrAppend(&line, " -x");
    }
    if (o->get_single_name() == "output") {
      absl::StrAppend(&line, " -a 'table json'");
    }
    absl::StrAppend(&out, line, " -d ", FishQuote(o->get_description()), "\n");
  }
  for (const CLI::App* sub : app.get_subcommands({})) {
    const std::string& name = sub->get_name();
    absl::StrAppend(&out, "complete -c corralctl -n 'not ", seen, "' -a ", name,
                    " -d ", FishQuote(sub->get_description()), "\n");
    const std::string when =
        absl::StrCat("-n '__fish_seen_subcommand_from ", name, "'");
    for (const CLI::Option* o : sub->get_options()) {
      if (o->get_positional() || o == sub->get_help_ptr()) continue;
      std::string line = absl::StrCat("complete -c corralctl ", when);
      for (const std::string& n : o->get_lnames())
        absl::StrAppend(&line, " -l ", n);
      for (const std::string& n : o->get_snames())
        absl::StrAppend(&line, " -s ", n);
      if (o->get_expected_min() > 0) absl::StrAppend(&line, " -x");
      absl::StrAppend(&out, line, " -d ", FishQuote(o->get_description()),
                      "\n");
    }
    std::string words = CommandWords(name);
    if (name == "signal")
      words = absl::StrJoin(common::SignalShortNames(), " ");
    if (!words.empty()) {
      absl::StrAppend(&out, "complete -c corralctl ", when, " -a ",
                      FishQuote(words), "\n");
    }
  }
  return out;
}

}  // namespace corral::ctl
