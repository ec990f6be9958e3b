// --node-register: the flag, where the register module is found, and the
// NODE_OPTIONS a worker gets.
#include "agent/os/node_register.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "agent/core/node_options.h"
#include "agent/options.h"

namespace corral::agent {
namespace {

using ::testing::HasSubstr;

// The package's register.js in the source tree.
const std::string kRegister = std::filesystem::canonical(
    std::string(CORRAL_TEST_FIXTURES) + "/../../worker/node/register.js");

ParsedCommandLine Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "corral-agent");
  return ParseCommandLine(static_cast<int>(args.size()), args.data());
}

TEST(NodeRegisterFlagTest, OffByDefault) {
  ParsedCommandLine p = Parse({"--ready=ipc", "--", "node", "app.js"});
  ASSERT_TRUE(p.options) << p.message;
  EXPECT_EQ(p.options->node_register, "");
  p = Parse({"--node-register=off", "--ready=ipc", "--", "node"});
  ASSERT_TRUE(p.options) << p.message;
  EXPECT_EQ(p.options->node_register, "");
  // An empty value is off too, and takes no argument away from COMMAND.
  p = Parse({"--node-register=", "--ready=ipc", "--", "node"});
  ASSERT_TRUE(p.options) << p.message;
  EXPECT_EQ(p.options->node_register, "");
  EXPECT_EQ(p.options->command, std::vector<std::string>{"node"});
}

TEST(NodeRegisterFlagTest, BareIsAutoAndFindsNoInstalledCopyHere) {
  // The test binary's folder has no ../lib/corral/node/register.js: the
  // package name is left for Node to resolve from the app's node_modules.
  ParsedCommandLine p =
      Parse({"--node-register", "--ready=ipc", "--", "node", "app.js"});
  ASSERT_TRUE(p.options) << p.message;
  EXPECT_EQ(p.options->node_register, kNodeRegisterModule);
  EXPECT_EQ(p.options->command, (std::vector<std::string>{"node", "app.js"}));
}

TEST(NodeRegisterFlagTest, APathBecomesAbsolute) {
  const std::string cwd = std::filesystem::current_path();
  std::filesystem::current_path(std::filesystem::path(kRegister).parent_path());
  ParsedCommandLine p =
      Parse({"--node-register=./register.js", "--ready=ipc", "--", "node"});
  std::filesystem::current_path(cwd);
  ASSERT_TRUE(p.options) << p.message;
  EXPECT_EQ(p.options->node_register, kRegister);
}

TEST(NodeRegisterFlagTest, FromTheEnvironment) {
  setenv("CORRAL_NODE_REGISTER", kRegister.c_str(), 1);
  ParsedCommandLine p = Parse({"--ready=ipc", "--", "node"});
  unsetenv("CORRAL_NODE_REGISTER");
  ASSERT_TRUE(p.options) << p.message;
  EXPECT_EQ(p.options->node_register, kRegister);
}

TEST(NodeRegisterFlagTest, BadValuesExitTwoNamingTheFlag) {
  struct Case {
    std::vector<const char*> args;
    std::string expect;
  };
  const std::string dir = std::filesystem::path(kRegister).parent_path();
  std::vector<Case> cases = {
      {{"--node-register=/no/such/register.js", "--ready=ipc", "--", "x"},
       "invalid --node-register value '/no/such/register.js': No such file"},
      {{"--node-register", dir.c_str(), "--ready=ipc", "--", "x"},
       "takes a path only as --node-register=PATH"},
      {{"--node-register", "--", "x"},
       "invalid --node-register value 'auto': it needs --ready=ipc"},
  };
  // A folder is not the module.
  const std::string folder = "--node-register=" + dir;
  cases.push_back(
      {{folder.c_str(), "--ready=ipc", "--", "x"}, "not a regular file"});
  for (const Case& c : cases) {
    ParsedCommandLine p = Parse(c.args);
    EXPECT_FALSE(p.options.has_value()) << c.expect;
    EXPECT_EQ(p.exit_code, 2) << c.expect;
    EXPECT_THAT(p.message, HasSubstr(c.expect));
  }
}

TEST(NodeRegisterFlagTest, HelpNamesIt) {
  ParsedCommandLine p = Parse({"--help"});
  EXPECT_THAT(p.message, HasSubstr("--node-register"));
  EXPECT_THAT(p.message, HasSubstr("(default off)"));
}

TEST(ResolveNodeRegisterTest, AutoWithoutAnInstalledCopyIsThePackageName) {
  // The test binary stands in for the agent (/proc/self/exe): nothing is
  // installed beside it. The installed layout, PREFIX/bin/corral-agent and
  // PREFIX/lib/corral/node/register.js, is run for real in
  // worker/node/test/node_register.test.js.
  const std::filesystem::path self =
      std::filesystem::read_symlink("/proc/self/exe");
  const std::filesystem::path beside =
      (self.parent_path() / kNodeRegisterBesideAgent).lexically_normal();
  ASSERT_FALSE(std::filesystem::exists(beside)) << beside;
  EXPECT_EQ(*ResolveNodeRegister("auto"), kNodeRegisterModule);
}

TEST(NodeOptionsTest, RequireComesFirstAndTheUsersOptionsStay) {
  EXPECT_EQ(NodeOptionsWithRequire("", "/opt/r.js"), "--require /opt/r.js");
  EXPECT_EQ(NodeOptionsWithRequire("--max-old-space-size=512 --inspect",
                                   "@corral/node/register"),
            "--require @corral/node/register --max-old-space-size=512 "
            "--inspect");
}

TEST(NodeOptionsTest, QuotesAsNodeReadsIt) {
  EXPECT_EQ(NodeOptionsWithRequire("", "/a b/r.js"), "--require \"/a b/r.js\"");
  EXPECT_EQ(NodeOptionsWithRequire("", "/a\"b\\c/r.js"),
            "--require \"/a\\\"b\\\\c/r.js\"");
}

TEST(NodeOptionsTest, AddsOrExtendsTheVariable) {
  std::vector<std::string> env = {"PATH=/bin", "NODE_OPTIONS=--trace-warnings"};
  AddNodeRequire(env, "/r.js");
  EXPECT_EQ(env,
            (std::vector<std::string>{
                "PATH=/bin", "NODE_OPTIONS=--require /r.js --trace-warnings"}));
  std::vector<std::string> bare = {"PATH=/bin"};
  AddNodeRequire(bare, "/r.js");
  EXPECT_EQ(bare, (std::vector<std::string>{"PATH=/bin",
                                            "NODE_OPTIONS=--require /r.js"}));
}

}  // namespace
}  // namespace corral::agent
