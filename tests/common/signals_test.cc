// Tests of the signal-name table (common/signals.h) that the agent,
// corralctl and the worker SDK share.
#include "common/signals.h"

#include <signal.h>

#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace corral::common {
namespace {

using ::testing::Contains;

TEST(SignalNameTest, NamesTheStandardSignals) {
  EXPECT_STREQ(SignalName(SIGTERM), "SIGTERM");
  EXPECT_STREQ(SignalName(SIGKILL), "SIGKILL");
  EXPECT_STREQ(SignalName(SIGUSR1), "SIGUSR1");
  EXPECT_STREQ(SignalName(SIGCHLD), "SIGCHLD");
  EXPECT_STREQ(SignalName(SIGSYS), "SIGSYS");
  EXPECT_STREQ(SignalName(SIGABRT), "SIGABRT");
}

TEST(SignalNameTest, RealTimeAndUnknownNumbersStillSaySomething) {
  EXPECT_STREQ(SignalName(SIGRTMIN), "SIGRTMIN+0");
  EXPECT_EQ(std::string(SignalName(SIGRTMIN + 2)), "SIGRTMIN+2");
  EXPECT_STREQ(SignalName(0), "signal 0");
  EXPECT_STREQ(SignalName(100), "signal 100");
  EXPECT_STREQ(SignalName(-1), "signal out of range");
  EXPECT_STREQ(SignalName(1000), "signal out of range");
}

// The old agent helper reused one thread_local buffer: two names in one
// expression printed the same text. Pointers from the table stay distinct.
TEST(SignalNameTest, PointersStayValidAcrossCallsAndThreads) {
  const char* term = SignalName(SIGTERM);
  const char* kill = SignalName(SIGKILL);
  EXPECT_STREQ(term, "SIGTERM");
  EXPECT_STREQ(kill, "SIGKILL");
  const char* from_thread = nullptr;
  std::thread t([&] { from_thread = SignalName(SIGHUP); });
  t.join();
  EXPECT_STREQ(from_thread, "SIGHUP");
  EXPECT_EQ(from_thread, SignalName(SIGHUP));
}

TEST(ParseSignalTest, NamesInAnyCaseWithOrWithoutSigAndNumbers) {
  EXPECT_EQ(ParseSignal("TERM"), SIGTERM);
  EXPECT_EQ(ParseSignal("SIGTERM"), SIGTERM);
  EXPECT_EQ(ParseSignal("sigusr1"), SIGUSR1);
  EXPECT_EQ(ParseSignal("hup"), SIGHUP);
  EXPECT_EQ(ParseSignal("15"), 15);
  EXPECT_EQ(ParseSignal("64"), NSIG - 1 >= 64 ? 64 : -1);
}

TEST(ParseSignalTest, UnknownIsMinusOne) {
  for (const char* text :
       {"", "SIG", "BOGUS", "SIGBOGUS", "0", "-1", "65", "15x", "TERM "}) {
    EXPECT_EQ(ParseSignal(text), -1) << text;
  }
}

TEST(SignalShortNamesTest, EveryNameParsesBackAndPrintsWithSig) {
  std::vector<std::string> names = SignalShortNames();
  EXPECT_THAT(names, Contains("TERM"));
  EXPECT_THAT(names, Contains("WINCH"));
  EXPECT_GE(names.size(), 30u);
  for (const std::string& name : names) {
    const int sig = ParseSignal(name);
    ASSERT_GT(sig, 0) << name;
    EXPECT_EQ(std::string(SignalName(sig)), "SIG" + name);
  }
}

}  // namespace
}  // namespace corral::common
