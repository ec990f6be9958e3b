// ReadableCliError on the messages the installed CLI11 really throws, so a
// CLI11 upgrade that changes its wording fails here, not in front of a user.
#include "common/cli_message.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <string>
#include <vector>

namespace corral {
namespace {

// The message CLI11 throws for `args` on a small app like ours.
std::string Cli11Error(std::vector<std::string> args) {
  CLI::App app{"test", "prog"};
  std::string delay;
  int workers = 0;
  std::string mode;
  bool now = false;
  app.add_option("--drain-delay", delay);
  app.add_option("--workers", workers);
  app.add_option("--mode", mode)->check(CLI::IsMember({"a", "b"}));
  app.add_flag("--now", now);
  app.add_subcommand("status", "")->add_option("ID", workers)->required();
  app.require_subcommand(1);
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "(parsed)";
}

TEST(CliMessageTest, AFlagGivenTwiceSaysSo) {
  const std::string raw =
      Cli11Error({"--drain-delay=1s", "--drain-delay=2s", "status", "1"});
  EXPECT_EQ(raw, "--drain-delay: At Most 1 required but received 2");
  EXPECT_EQ(ReadableCliError(raw),
            "--drain-delay is given 2 times; give it once");
}

TEST(CliMessageTest, ANumberThatIsNotOneNamesTheFlagAndValue) {
  const std::string raw = Cli11Error({"--workers", "node", "status", "1"});
  EXPECT_EQ(ReadableCliError(raw), "--workers: 'node' is not a valid value");
  EXPECT_EQ(RefusedCliValue(raw), "node");
}

TEST(CliMessageTest, AMissingCommandAndExtraArguments) {
  EXPECT_EQ(ReadableCliError(Cli11Error({"--now"})), "give a command");
  EXPECT_EQ(ReadableCliError(Cli11Error({"status", "1", "2"})),
            "unexpected argument(s): 2");
}

TEST(CliMessageTest, AFlagWithoutItsValue) {
  const std::string raw = Cli11Error({"--workers"});
  EXPECT_EQ(raw, "--workers: 1 required INT missing");
  EXPECT_EQ(ReadableCliError(raw), "--workers needs a value (--workers=VALUE)");
}

TEST(CliMessageTest, AValueOutsideAListNamesTheFlag) {
  const std::string raw = Cli11Error({"--mode=c", "status", "1"});
  EXPECT_TRUE(raw.starts_with("--mode: c not in")) << raw;  // readable as is
  EXPECT_EQ(ReadableCliError(raw), raw);
}

TEST(CliMessageTest, OurOwnValidatorsKeepTheirWordsAndGiveTheValue) {
  const std::string ours = "--lines: '-5' is not a count: give a whole number";
  EXPECT_EQ(ReadableCliError(ours), ours);
  EXPECT_EQ(RefusedCliValue(ours), "-5");
  EXPECT_EQ(RefusedCliValue("give a command"), "");
  EXPECT_EQ(RefusedCliValue("invalid --workers value 'node': expected auto"),
            "node");
}

TEST(CliMessageTest, AnUnknownMessageComesBackUnchanged) {
  EXPECT_EQ(ReadableCliError("something new from CLI11"),
            "something new from CLI11");
}

}  // namespace
}  // namespace corral
