// The bounds on runtime log text krane hands out: one GetLogs answer (an app flooding its log
// must not make an answer as large as everything dockerd kept) and the log tail in a failure
// reason (which ctrl stores with the instance and the deployment's error).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "krane/log_lines.h"

namespace slipway::krane {
namespace {

std::vector<LogLine> Lines(int n, size_t text_bytes, int64_t first_ns = 1000) {
  std::vector<LogLine> out;
  for (int i = 0; i < n; ++i) {
    out.push_back({"dep-0", first_ns + i, "stdout", std::string(text_bytes, 'x')});
  }
  return out;
}

TEST(LogAnswerBoundTest, AnAnswerWithinTheBoundIsKeptWhole) {
  auto lines = Lines(100, 10);
  EXPECT_FALSE(BoundLogAnswer(lines, 1000, 100));
  EXPECT_EQ(lines.size(), 100u);
}

TEST(LogAnswerBoundTest, TheOldestLinesWithinTheBytesAndLinesAreKeptAndMoreIsSaid) {
  auto by_bytes = Lines(100, 10);
  EXPECT_TRUE(BoundLogAnswer(by_bytes, 255, 1000));
  ASSERT_EQ(by_bytes.size(), 25u);
  EXPECT_EQ(by_bytes.front().time_ns, 1000);
  EXPECT_EQ(by_bytes.back().time_ns, 1024);

  auto by_count = Lines(100, 10);
  EXPECT_TRUE(BoundLogAnswer(by_count, 1 << 20, 7));
  EXPECT_EQ(by_count.size(), 7u);
}

TEST(LogAnswerBoundTest, LinesOfTheInstantTheAnswerEndsInAreNeverSplit) {
  // Two instances wrote at the same nanosecond: a caller resuming after that time would never
  // see the second line if the answer ended between them.
  std::vector<LogLine> lines = {{"dep-0", 5, "stdout", "a"},
                                {"dep-0", 6, "stdout", "b"},
                                {"dep-1", 6, "stdout", "c"},
                                {"dep-0", 7, "stdout", "d"}};
  EXPECT_TRUE(BoundLogAnswer(lines, 1 << 20, 2));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines.back().text, "c");
}

TEST(LogAnswerBoundTest, ALineLargerThanTheBoundStillGoesAlone) {
  auto lines = Lines(3, 5000);
  EXPECT_TRUE(BoundLogAnswer(lines, 100, 100));
  EXPECT_EQ(lines.size(), 1u);
}

TEST(LogTailBoundTest, ATailWithinTheBoundIsUnchangedAndALongerOneKeepsWholeLastLines) {
  EXPECT_EQ(BoundLogTail("boom\nbang", 100), "boom\nbang");
  std::string flood;
  for (int i = 0; i < 1000; ++i) flood += "line " + std::to_string(i) + "\n";
  flood += "the last words";
  const std::string bounded = BoundLogTail(flood, 64);
  EXPECT_LE(bounded.size(), 64u + 40u) << bounded;
  EXPECT_EQ(bounded.rfind("[", 0), 0u) << bounded;
  EXPECT_NE(bounded.find("earlier bytes left out]\n"), std::string::npos) << bounded;
  EXPECT_NE(bounded.find("\nline 999\nthe last words"), std::string::npos) << bounded;
  // After the note, it starts at a line's beginning.
  EXPECT_EQ(bounded.substr(bounded.find("]\n") + 2, 5), "line ");
}

}  // namespace
}  // namespace slipway::krane
