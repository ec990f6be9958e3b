// Command line and environment parsing: defaults, overrides, and the exit
// code and message for every kind of bad input.
#include "agent/options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <utility>

#include "agent/supervisor/supervisor.h"

namespace corral::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

ParsedCommandLine Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "corral-agent");
  return ParseCommandLine(static_cast<int>(args.size()), args.data());
}

TEST(OptionsTest, DefaultsFitKubernetesGracePeriod) {
  ParsedCommandLine p = Parse({"--", "node", "app.js"});
  ASSERT_TRUE(p.options) << p.message;
  const Options& o = *p.options;
  EXPECT_FALSE(o.workers.has_value());
  EXPECT_EQ(o.command, (std::vector<std::string>{"node", "app.js"}));
  EXPECT_EQ(o.ready, ReadyMode::kNotify);
  EXPECT_LT(o.drain_delay + o.stop_timeout, seconds(30));
  EXPECT_EQ(o.backoff.min, milliseconds(100));
  EXPECT_EQ(o.backoff.max, seconds(30));
  // Round robin when the kernel allows it, resolved when sockets open.
  EXPECT_EQ(o.balance, BalanceMode::kAuto);
}

TEST(OptionsTest, BalanceTakesEveryModeByName) {
  for (const char* mode :
       {"auto", "round-robin", "reuseport", "source-ip", "shared"}) {
    const std::string flag = std::string("--balance=") + mode;
    ParsedCommandLine p = Parse({flag.c_str(), "--", "x"});
    ASSERT_TRUE(p.options) << p.message;
    EXPECT_EQ(BalanceModeName(p.options->balance), mode);
  }
}

TEST(OptionsTest, ParsesEveryFlag) {
  ParsedCommandLine p = Parse(
      {"--workers=3", "--listen=web=tcp://127.0.0.1:8080",
       "--listen=unix:/tmp/x.sock", "--ready=delay:1.5s", "--ready-timeout=10s",
       "--stop-timeout", "7s", "--drain-delay=250ms", "--watchdog=2s",
       "--restart-backoff=50ms,5s", "--log-format=json", "--", "app",
       "--flag-for-app"});
  ASSERT_TRUE(p.options) << p.message;
  const Options& o = *p.options;
  EXPECT_EQ(o.workers, 3);
  ASSERT_EQ(o.listen.size(), 2u);
  EXPECT_EQ(o.listen[0].name, "web");
  EXPECT_EQ(o.listen[0].port, 8080);
  EXPECT_EQ(o.listen[1].name, "listen1");
  EXPECT_TRUE(o.listen[1].is_unix);
  EXPECT_EQ(o.ready, ReadyMode::kDelay);
  EXPECT_EQ(o.ready_delay, milliseconds(1500));
  EXPECT_EQ(o.ready_timeout, seconds(10));
  EXPECT_EQ(o.stop_timeout, seconds(7));
  EXPECT_EQ(o.drain_delay, milliseconds(250));
  EXPECT_EQ(o.watchdog, seconds(2));
  EXPECT_EQ(o.backoff.min, milliseconds(50));
  EXPECT_EQ(o.log_format, LogFormat::kJson);
  EXPECT_EQ(o.command, (std::vector<std::string>{"app", "--flag-for-app"}));
}

TEST(OptionsTest, EnvironmentSetsAndFlagWins) {
  setenv("CORRAL_WORKERS", "5", 1);
  setenv("CORRAL_LISTEN", "tcp://127.0.0.1:1,a=tcp://127.0.0.1:2", 1);
  setenv("CORRAL_STOP_TIMEOUT", "9s", 1);
  ParsedCommandLine p = Parse({"--stop-timeout=3s", "--", "app"});
  unsetenv("CORRAL_WORKERS");
  unsetenv("CORRAL_LISTEN");
  unsetenv("CORRAL_STOP_TIMEOUT");
  ASSERT_TRUE(p.options) << p.message;
  EXPECT_EQ(p.options->workers, 5);
  ASSERT_EQ(p.options->listen.size(), 2u);
  EXPECT_EQ(p.options->listen[1].name, "a");
  EXPECT_EQ(p.options->stop_timeout, seconds(3));
}

struct BadCase {
  std::vector<const char*> args;
  const char* expect;  // in the message
};

TEST(OptionsTest, BadInputExitsTwoNamingTheFlagAndValue) {
  std::vector<BadCase> cases = {
      {{"--workers=abc", "--", "x"}, "invalid --workers value 'abc'"},
      {{"--workers=0", "--", "x"}, "--workers value '0'"},
      {{"--ready=bogus", "--", "x"}, "invalid --ready value 'bogus'"},
      {{"--ready=delay:soon", "--", "x"}, "'soon'"},
      {{"--stop-timeout=-1s", "--", "x"}, "invalid --stop-timeout value '-1s'"},
      {{"--drain-delay=forever", "--", "x"}, "--drain-delay"},
      // now + value would overflow (found by tests/fuzz/duration_fuzz.cc).
      {{"--stop-timeout=2562047h", "--", "x"},
       "invalid --stop-timeout value '2562047h': at most 8760h (one year)"},
      {{"--ready=delay:8761h", "--", "x"}, "at most 8760h"},
      {{"--restart-backoff=1s,100000h", "--", "x"}, "at most 8760h"},
      {{"--restart-backoff=5s", "--", "x"}, "--restart-backoff value '5s'"},
      {{"--restart-backoff=5s,1s", "--", "x"}, "0 < MIN <= MAX"},
      {{"--log-format=xml", "--", "x"}, "--log-format value 'xml'"},
      {{"--balance=random", "--", "x"},
       "--balance value 'random': expected auto, round-robin, "
       "reuseport, source-ip or shared"},
      {{"--listen=http://x:1", "--", "x"}, "--listen value 'http://x:1'"},
      {{"--listen=tcp://x:99999", "--", "x"}, "PORT"},
      {{"--bogus", "--", "x"}, "unknown flag '--bogus'"},
      {{"--stop-signal=FOO", "--", "x"}, "invalid --stop-signal value 'FOO'"},
      {{"--stop-signal=STOP", "--", "x"}, "SIGSTOP does not end a process"},
      {{"--max-workers=-3", "--", "x"}, "invalid --max-workers value '-3'"},
      {{"--max-workers=lots", "--", "x"}, "auto (a ceiling of 4 per usable"},
      {{"--accept-stall=5", "--", "x"}, "--accept-stall value '5'"},
      {{"--workers=2"}, "missing COMMAND"},
      {{}, "missing COMMAND"},
  };
  for (const BadCase& c : cases) {
    ParsedCommandLine p = Parse(c.args);
    EXPECT_FALSE(p.options.has_value()) << c.expect;
    EXPECT_EQ(p.exit_code, 2) << c.expect;
    EXPECT_THAT(p.message, HasSubstr(c.expect));
  }
}

TEST(OptionsTest, AnEmptyValueAfterEqualsIsEmpty) {
  ParsedCommandLine p =
      Parse({"--control-socket=", "--workers=3", "--", "app", "--x="});
  ASSERT_TRUE(p.options) << p.message;
  EXPECT_EQ(p.options->control_socket, "");
  EXPECT_EQ(p.options->workers, 3);
  EXPECT_EQ(p.options->command, (std::vector<std::string>{"app", "--x="}));
  p = Parse({"--control-socket=", "--", "app"});
  ASSERT_TRUE(p.options) << p.message;
  EXPECT_EQ(p.options->command, (std::vector<std::string>{"app"}));
}

TEST(OptionsTest, HelpExitsZero) {
  ParsedCommandLine p = Parse({"--help"});
  EXPECT_FALSE(p.options.has_value());
  EXPECT_EQ(p.exit_code, 0);
  EXPECT_THAT(p.message, HasSubstr("--workers"));
}

// The description --help prints for `flag` (the text up to the next flag).
std::string HelpFor(const std::string& help, const std::string& flag) {
  const size_t at = help.find("  " + flag + " ");
  if (at == std::string::npos) return "";
  const size_t end = help.find("\n  --", at + 1);
  return help.substr(at, end == std::string::npos ? end : end - at);
}

TEST(OptionsHelpTest, ShowsTheDefaultsOfOptionsStruct) {
  const Options d;
  const std::string help = HelpText(d);
  const std::string backoff = FormatDurationFlag(d.backoff.min) + "," +
                              FormatDurationFlag(d.backoff.max);
  const std::pair<const char*, std::string> cases[] = {
      {"--workers", "(default auto)"},
      {"--listen", "(default none)"},
      {"--ready", "(default notify)"},
      {"--ready-timeout",
       "(default " + FormatDurationFlag(d.ready_timeout) + ")"},
      {"--stop-timeout",
       "(default " + FormatDurationFlag(d.stop_timeout) + ")"},
      {"--drain-delay", "(default " + FormatDurationFlag(d.drain_delay) + ")"},
      {"--watchdog", "(default 0 = off)"},
      {"--restart-backoff", "(default " + backoff + ")"},
      {"--log-format", "(default text)"},
      {"--cpu-rounding", "(default ceil)"},
      {"--min-workers",
       "(default " + std::to_string(d.sizing.min_workers) + ")"},
      {"--max-workers", "(default auto)"},
      {"--stop-signal", "(default SIGTERM)"},
      {"--accept-stall", "(default 5s)"},
      {"--max-worker-memory", "(default off)"},
      {"--control-socket", "(default " + d.control_socket + ")"},
      {"--probe-port", "(default 0 = off)"},
      {"--http-port", "(default 0 = off)"},
      {"--probe-address", "(default " + d.probe_address + ")"},
      {"--min-ready", "(default " + std::to_string(d.min_ready) + ")"},
      {"--control-tls-listen", "(default off)"},
  };
  for (const auto& [flag, want] : cases) {
    EXPECT_THAT(HelpFor(help, flag), HasSubstr(want)) << flag;
  }
  // As the user reads them: the documented values, formatted back.
  EXPECT_THAT(HelpFor(help, "--stop-timeout"), HasSubstr("(default 20s)"));
  EXPECT_THAT(HelpFor(help, "--restart-backoff"),
              HasSubstr("(default 100ms,30s)"));
  // The binary's --help is the same text.
  EXPECT_EQ(Parse({"--help"}).message, help);
}

// Nothing in the help text is written by hand: change the struct and the
// help follows.
TEST(OptionsHelpTest, FollowsTheStructNotACopy) {
  Options d;
  d.workers = 3;
  d.ready = ReadyMode::kDelay;
  d.ready_delay = milliseconds(1500);
  d.stop_timeout = seconds(7);
  d.drain_delay = milliseconds(250);
  d.watchdog = seconds(90);
  d.backoff.min = milliseconds(50);
  d.max_worker_memory = {WorkerMemoryBound::Mode::kFixed, int64_t{512} << 20};
  d.probe_port = 8081;
  d.listen = {*ParseListenSpec("web=tcp://[::1]:80", "listen"),
              *ParseListenSpec("unix:/run/x.sock", "listen1")};
  const std::string help = HelpText(d);
  EXPECT_THAT(
      HelpFor(help, "--listen"),
      HasSubstr("(default web=tcp://[::1]:80,listen1=unix:/run/x.sock)"));
  EXPECT_THAT(HelpFor(help, "--workers"), HasSubstr("(default 3)"));
  EXPECT_THAT(HelpFor(help, "--ready"), HasSubstr("(default delay:1.5s)"));
  EXPECT_THAT(HelpFor(help, "--stop-timeout"), HasSubstr("(default 7s)"));
  EXPECT_THAT(HelpFor(help, "--drain-delay"), HasSubstr("(default 250ms)"));
  EXPECT_THAT(HelpFor(help, "--watchdog"), HasSubstr("(default 1m30s)"));
  EXPECT_THAT(HelpFor(help, "--restart-backoff"),
              HasSubstr("(default 50ms,30s)"));
  EXPECT_THAT(HelpFor(help, "--max-worker-memory"),
              HasSubstr("(default 512Mi)"));
  EXPECT_THAT(HelpFor(help, "--probe-port"), HasSubstr("(default 8081)"));
}

// The flags start from Options{}: no flags at all parse back to it.
TEST(OptionsTest, StopSignalMaxWorkersAndAcceptStall) {
  struct {
    const char* flag;
    int signal;
  } signals[] = {{"--stop-signal=SIGINT", SIGINT},
                 {"--stop-signal=INT", SIGINT},
                 {"--stop-signal=2", SIGINT},
                 {"--stop-signal=quit", SIGQUIT}};
  for (const auto& c : signals) {
    ParsedCommandLine p = Parse({c.flag, "--", "app"});
    ASSERT_TRUE(p.options) << p.message;
    EXPECT_EQ(p.options->stop_signal, c.signal) << c.flag;
  }
  struct {
    const char* flag;
    int max;
  } maxes[] = {{"--max-workers=auto", kMaxWorkersAuto},
               {"--max-workers=none", kMaxWorkersNone},
               {"--max-workers=0", kMaxWorkersNone},
               {"--max-workers=12", 12}};
  for (const auto& c : maxes) {
    ParsedCommandLine p = Parse({c.flag, "--", "app"});
    ASSERT_TRUE(p.options) << p.message;
    EXPECT_EQ(p.options->sizing.max_workers, c.max) << c.flag;
  }
  ParsedCommandLine p = Parse({"--accept-stall=0", "--", "app"});
  ASSERT_TRUE(p.options) << p.message;
  EXPECT_EQ(p.options->accept_stall, Duration::zero());
}

TEST(OptionsDefaultsTest, NoFlagsGiveOptionsStruct) {
  ParsedCommandLine p = Parse({"--", "app"});
  ASSERT_TRUE(p.options) << p.message;
  const Options& o = *p.options;
  const Options d;
  EXPECT_EQ(o.workers, d.workers);
  EXPECT_EQ(o.listen.size(), d.listen.size());
  EXPECT_EQ(o.ready, d.ready);
  EXPECT_EQ(o.ready_delay, d.ready_delay);
  EXPECT_EQ(o.ready_timeout, d.ready_timeout);
  EXPECT_EQ(o.stop_timeout, d.stop_timeout);
  EXPECT_EQ(o.drain_delay, d.drain_delay);
  EXPECT_EQ(o.watchdog, d.watchdog);
  EXPECT_EQ(o.stop_signal, d.stop_signal);
  EXPECT_EQ(o.accept_stall, d.accept_stall);
  EXPECT_EQ(o.backoff.min, d.backoff.min);
  EXPECT_EQ(o.backoff.max, d.backoff.max);
  EXPECT_EQ(o.log_format, d.log_format);
  EXPECT_EQ(o.sizing.rounding, d.sizing.rounding);
  EXPECT_EQ(o.sizing.min_workers, d.sizing.min_workers);
  EXPECT_EQ(o.sizing.max_workers, d.sizing.max_workers);
  EXPECT_EQ(o.max_worker_memory, d.max_worker_memory);
  EXPECT_EQ(o.control_socket, d.control_socket);
  EXPECT_EQ(o.probe_port, d.probe_port);
  EXPECT_EQ(o.http_port, d.http_port);
  EXPECT_EQ(o.probe_address, d.probe_address);
  EXPECT_EQ(o.min_ready, d.min_ready);
  EXPECT_EQ(o.control_tls_listen, d.control_tls_listen);
}

// SupervisorConfig{} is not a second, divergent copy of the timings.
TEST(OptionsDefaultsTest, SupervisorConfigStartsFromTheSameDefaults) {
  const Options o;
  const SupervisorConfig c;
  EXPECT_EQ(c.ready_timeout, o.ready_timeout);
  EXPECT_EQ(c.stop_timeout, o.stop_timeout);
  EXPECT_EQ(c.drain_delay, o.drain_delay);
  EXPECT_EQ(c.watchdog, o.watchdog);
  EXPECT_EQ(c.stop_signal, o.stop_signal);
  EXPECT_EQ(c.backoff.min, o.backoff.min);
  EXPECT_EQ(c.backoff.max, o.backoff.max);
}

// Durations follow the documented Go/Abseil syntax (common/duration.h),
// as corral-worker's do: a bare number other than 0 needs a unit.
TEST(OptionsTest, ABareNumberDurationIsRefusedExceptZero) {
  ParsedCommandLine p = Parse({"--stop-timeout=5", "--", "x"});
  EXPECT_FALSE(p.options.has_value());
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_THAT(p.message, HasSubstr("invalid --stop-timeout value '5': a "
                                   "number needs a unit"));
  setenv("CORRAL_DRAIN_DELAY", "2", 1);
  p = Parse({"--", "x"});
  unsetenv("CORRAL_DRAIN_DELAY");
  EXPECT_THAT(
      p.message,
      HasSubstr("invalid CORRAL_DRAIN_DELAY (--drain-delay) value '2'"));
  p = Parse({"--drain-delay=0", "--watchdog=0", "--", "x"});
  ASSERT_TRUE(p.options) << p.message;
  EXPECT_EQ(p.options->drain_delay, Duration::zero());
}

TEST(ListenSpecTest, ParsesTcpUnixAndNames) {
  auto v6 = ParseListenSpec("tcp://[::1]:80", "d");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->name, "d");
  auto any = ParseListenSpec("api=tcp://:9000", "d");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->host, "");
  EXPECT_EQ(any->name, "api");
  EXPECT_FALSE(ParseListenSpec("tcp://[::1:80", "d").ok());
  EXPECT_FALSE(ParseListenSpec("unix:", "d").ok());
  EXPECT_FALSE(ParseListenSpec("=tcp://:1", "d").ok());
}

// 0 stays "off"; auto asks the kernel for a free port (no test races for one).
TEST(OptionsTest, ProbeAndHttpPortsAreOffANumberOrAuto) {
  ParsedCommandLine p = Parse({"--", "app"});
  ASSERT_TRUE(p.options) << p.message;
  EXPECT_EQ(p.options->probe_port, 0);
  EXPECT_EQ(p.options->http_port, 0);
  p = Parse({"--probe-port=auto", "--http-port=9090", "--", "app"});
  ASSERT_TRUE(p.options) << p.message;
  EXPECT_EQ(p.options->probe_port, kAutoPort);
  EXPECT_EQ(p.options->http_port, 9090);
  setenv("CORRAL_HTTP_PORT", "auto", 1);
  p = Parse({"--", "app"});
  unsetenv("CORRAL_HTTP_PORT");
  ASSERT_TRUE(p.options) << p.message;
  EXPECT_EQ(p.options->http_port, kAutoPort);
  for (const char* bad : {"--probe-port=-1", "--http-port=65536",
                          "--probe-port=any", "--http-port=80x"}) {
    p = Parse({bad, "--", "app"});
    EXPECT_EQ(p.exit_code, 2) << bad;
    EXPECT_THAT(p.message, HasSubstr("or auto (any free port)")) << bad;
  }
}

}  // namespace
}  // namespace corral::agent
