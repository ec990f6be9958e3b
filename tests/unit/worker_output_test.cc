// Worker output line splitting (LineSplitter): whole lines, long lines in
// pieces, unfinished lines, and Node's IPC channel.
#include "agent/core/worker_output.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace corral::agent {
namespace {

using Piece = std::pair<std::string, bool>;  // text, cont
using ::testing::ElementsAre;

class Collect {
 public:
  LineSplitter::Emit emit() {
    return [this](std::string_view line, bool cont) {
      pieces.emplace_back(std::string(line), cont);
    };
  }
  std::vector<Piece> pieces;
};

TEST(LineSplitterTest, LinesAcrossChunksComeOutWhole) {
  LineSplitter lines(/*ipc=*/false);
  Collect c;
  lines.Feed("one\ntw", c.emit());
  lines.Feed("o\n\nthr", c.emit());
  EXPECT_THAT(c.pieces, ElementsAre(Piece{"one", false}, Piece{"two", false},
                                    Piece{"", false}));
  lines.Finish(c.emit());  // the unfinished last line
  EXPECT_EQ(c.pieces.back(), (Piece{"thr", false}));
}

TEST(LineSplitterTest, LongLinesComeOutInMarkedPieces) {
  LineSplitter lines(false);
  Collect c;
  const std::string big(kMaxLine * 2 + 10, 'x');
  lines.Feed(big + "\n", c.emit());
  ASSERT_EQ(c.pieces.size(), 3u);
  EXPECT_EQ(c.pieces[0].first.size(), kMaxLine);
  EXPECT_TRUE(c.pieces[0].second);
  EXPECT_TRUE(c.pieces[1].second);
  EXPECT_EQ(c.pieces[2], (Piece{std::string(10, 'x'), false}));
}

TEST(LineSplitterTest, AnUnfinishedLineIsNotHeldPastTheLimit) {
  LineSplitter lines(false);
  Collect c;
  lines.Feed(std::string(kMaxLine + 5, 'y'), c.emit());
  ASSERT_EQ(c.pieces.size(), 1u);
  EXPECT_EQ(c.pieces[0].first.size(), kMaxLine);
  EXPECT_TRUE(c.pieces[0].second);
  lines.Feed("z\n", c.emit());
  EXPECT_EQ(c.pieces.back(), (Piece{"yyyyyz", false}));
}

TEST(LineSplitterTest, IpcKeepsWholeMessagesAndDropsRunawayOnes) {
  LineSplitter lines(/*ipc=*/true);
  Collect c;
  lines.Feed("\"ready\"\n{\"cmd\":", c.emit());
  EXPECT_THAT(c.pieces, ElementsAre(Piece{"\"ready\"", false}));
  lines.Feed(std::string(kMaxLine + 1, 'j'), c.emit());  // dropped
  lines.Feed("\"x\"\n", c.emit());
  EXPECT_EQ(c.pieces.back(), (Piece{"\"x\"", false}));
  lines.Feed("half", c.emit());
  lines.Finish(c.emit());  // an unfinished message is not a message
  EXPECT_EQ(c.pieces.size(), 2u);
}

}  // namespace
}  // namespace corral::agent
