#include "common/signals.h"

#include <signal.h>

#include <array>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace corral::common {
namespace {

struct Named {
  int number;
  const char* name;  // with "SIG"
};

// Linux's standard signals, in number order on x86 and arm. Aliases
// (SIGIOT = SIGABRT, SIGPOLL = SIGIO, SIGCLD = SIGCHLD) print as the name
// listed here.
constexpr Named kStandard[] = {
    {SIGHUP, "SIGHUP"},       {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},
    {SIGILL, "SIGILL"},       {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
    {SIGBUS, "SIGBUS"},       {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"},
    {SIGUSR1, "SIGUSR1"},     {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
    {SIGPIPE, "SIGPIPE"},     {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
#ifdef SIGSTKFLT
    {SIGSTKFLT, "SIGSTKFLT"},
#endif
    {SIGCHLD, "SIGCHLD"},     {SIGCONT, "SIGCONT"}, {SIGSTOP, "SIGSTOP"},
    {SIGTSTP, "SIGTSTP"},     {SIGTTIN, "SIGTTIN"}, {SIGTTOU, "SIGTTOU"},
    {SIGURG, "SIGURG"},       {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"},
    {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"},
    {SIGIO, "SIGIO"},         {SIGPWR, "SIGPWR"},   {SIGSYS, "SIGSYS"},
};

// A wait status carries the signal in 7 bits: no signal number reaches 128.
constexpr int kNames = 128;

// Every name from 0 to kNames-1, built once (thread-safe static init), so
// SignalName can hand out pointers that never dangle.
const std::array<std::string, kNames>& Names() {
  static const std::array<std::string, kNames>* names = [] {
    auto* all = new std::array<std::string, kNames>;
    for (int sig = 0; sig < kNames; ++sig) {
      (*all)[sig] = absl::StrCat("signal ", sig);
      // SIGRTMIN is a libc call (glibc keeps a few for itself), no syscall.
      if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
        (*all)[sig] = absl::StrCat("SIGRTMIN+", sig - SIGRTMIN);
      }
    }
    for (const Named& n : kStandard) (*all)[n.number] = n.name;
    return all;
  }();
  return *names;
}

}  // namespace

const char* SignalName(int sig) {
  if (sig < 0 || sig >= kNames) return "signal out of range";
  return Names()[sig].c_str();
}

int ParseSignal(std::string_view text_std) {
  absl::string_view text(text_std.data(), text_std.size());
  int n = 0;
  if (absl::SimpleAtoi(text, &n)) return n > 0 && n < NSIG ? n : -1;
  for (const Named& s : kStandard) {
    absl::string_view full = s.name;
    if (absl::EqualsIgnoreCase(text, full) ||
        absl::EqualsIgnoreCase(text, full.substr(3))) {
      return s.number;
    }
  }
  return -1;
}

std::vector<std::string> SignalShortNames() {
  std::vector<std::string> out;
  for (const Named& s : kStandard) out.emplace_back(s.name + 3);  // no "SIG"
  return out;
}

}  // namespace corral::common
