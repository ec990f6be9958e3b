// Lines on a Node worker's IPC channel (--ready=ipc): what the agent takes
// from them and what it leaves alone.
#include "agent/supervisor/ipc_message.h"

#include <gtest/gtest.h>

#include <string>

namespace corral::agent {
namespace {

NotifyMessage Parsed(std::string_view line) {
  auto m = ParseIpcMessage(line);
  EXPECT_TRUE(m.ok()) << line << ": " << m.status();
  EXPECT_TRUE(m.ok() && m->has_value()) << line << ": not for the agent";
  return m.ok() && m->has_value() ? **m : NotifyMessage{};
}

bool Ignored(std::string_view line) {
  auto m = ParseIpcMessage(line);
  EXPECT_TRUE(m.ok()) << line << ": " << m.status();
  return m.ok() && !m->has_value();
}

TEST(IpcMessageTest, ReadyAsPm2AppsSendIt) {
  EXPECT_TRUE(Parsed("\"ready\"").ready);
  EXPECT_TRUE(Parsed("\"ready\"\r").ready);
  EXPECT_TRUE(Parsed("  \"ready\"  ").ready);
  EXPECT_TRUE(Parsed("\"\\u0072eady\"").ready);  // JSON escapes count
}

TEST(IpcMessageTest, CorralVerbs) {
  NotifyMessage ready = Parsed(R"({"corral":"ready"})");
  EXPECT_TRUE(ready.ready);
  EXPECT_FALSE(ready.watchdog);
  NotifyMessage dog = Parsed(R"({"corral":"watchdog"})");
  EXPECT_TRUE(dog.watchdog);
  EXPECT_FALSE(dog.ready);
  EXPECT_TRUE(Parsed(R"({"corral":"stopping"})").stopping);
  NotifyMessage status =
      Parsed(R"({ "corral" : "status", "text" : "serving; redis up" })");
  EXPECT_EQ(status.status, "serving; redis up");
  EXPECT_FALSE(status.ready);
  // Member order does not matter; other members are skipped.
  EXPECT_EQ(
      Parsed(R"({"text":"a","x":[1,{"y":null}],"corral":"status"})").status,
      "a");
}

TEST(IpcMessageTest, StatusTextIsDecoded) {
  EXPECT_EQ(
      Parsed(R"({"corral":"status","text":"q\"\\\/ \u00e9 \ud83d\ude00 \t"})")
          .status,
      "q\"\\/ \xc3\xa9 \xf0\x9f\x98\x80 \t");
  EXPECT_EQ(Parsed(R"({"corral":"status","text":""})").status, "");
}

TEST(IpcMessageTest, OtherTrafficIsNotForTheAgent) {
  // Node's own messages and whatever else the app sends.
  EXPECT_TRUE(Ignored(R"({"cmd":"NODE_HANDLE_ACK"})"));
  EXPECT_TRUE(Ignored(
      R"({"cmd":"NODE_CLUSTER","act":"online","seq":0,"data":{"a":[1,2.5e3,-0.1,true,false,null]}})"));
  EXPECT_TRUE(Ignored("\"online\""));
  EXPECT_TRUE(Ignored("\"readyz\""));
  EXPECT_TRUE(Ignored("42"));
  EXPECT_TRUE(Ignored("[\"ready\"]"));
  EXPECT_TRUE(Ignored("{}"));
  EXPECT_TRUE(Ignored(R"({"type":"ready"})"));
  // A verb this agent does not know: ignored, like unknown sd_notify keys.
  EXPECT_TRUE(Ignored(R"({"corral":"reticulate"})"));
}

TEST(IpcMessageTest, MalformedLinesAreErrors) {
  for (std::string_view line :
       {"ready", "\"ready", "\"ready\" x", "{\"corral\":\"ready\"",
        "{\"corral\":\"ready\"}}", "{corral:\"ready\"}", "{\"a\":01}",
        "{\"a\":1.}", "{\"a\":tru}", "\"bad \\x escape\"", "",
        "{\"a\":\"raw\ncontrol\"}"}) {
    EXPECT_FALSE(ParseIpcMessage(line).ok()) << line;
  }
}

TEST(IpcMessageTest, MalformedCorralMessagesAreErrors) {
  EXPECT_FALSE(ParseIpcMessage(R"({"corral":"status"})").ok());
  EXPECT_FALSE(ParseIpcMessage(R"({"corral":"status","text":7})").ok());
  EXPECT_FALSE(ParseIpcMessage(R"({"corral":1})").ok());
  // The last duplicate wins, as in JavaScript.
  EXPECT_FALSE(
      ParseIpcMessage(R"({"corral":"status","text":"a","text":null})").ok());
  EXPECT_EQ(Parsed(R"({"corral":7,"corral":"status","text":"b"})").status, "b");
  std::string big = R"({"corral":"status","text":")" +
                    std::string(kMaxNotifyMessage + 1, 'x') + "\"}";
  EXPECT_FALSE(ParseIpcMessage(big).ok());
}

TEST(IpcMessageTest, DeepNestingIsRefusedNotRecursedForever) {
  std::string deep =
      "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_FALSE(ParseIpcMessage(deep).ok());
}

}  // namespace
}  // namespace corral::agent
