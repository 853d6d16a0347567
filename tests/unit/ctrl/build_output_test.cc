#include "ctrl/build/docker/build_output.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace slipway::ctrl::build::docker {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

// Output recorded from dockerd 20.10 (Debian 12) building a busybox FROM scratch image.
std::string Fixture(const std::string& name) {
  return testing::ReadFile(testing::SourceDir() / "tests/unit/ctrl/testdata" / name);
}

struct Decoded {
  std::vector<std::string> lines;
  std::optional<std::string> error;
  std::string image_id;
};

// Feeds the fixture in awkward pieces (7 bytes) to prove lines split anywhere are rejoined.
Decoded Decode(const std::string& bytes, size_t piece = 7) {
  Decoded d;
  BuildOutputDecoder decoder([&](std::string_view line) { d.lines.emplace_back(line); });
  for (size_t i = 0; i < bytes.size(); i += piece) decoder.Feed(std::string_view(bytes).substr(i, piece));
  decoder.Finish();
  d.error = decoder.error();
  d.image_id = decoder.image_id();
  return d;
}

bool AnyLineHas(const std::vector<std::string>& lines, std::string_view needle) {
  for (const auto& l : lines) {
    if (l.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST(BuildOutputTest, BuildkitSuccessYieldsStepsRunOutputAndImageId) {
  Decoded d = Decode(Fixture("buildkit_ok.jsonl"));
  EXPECT_FALSE(d.error.has_value());
  EXPECT_THAT(d.image_id, ::testing::StartsWith("sha256:"));
  EXPECT_TRUE(AnyLineHas(d.lines, "[1/2] COPY busybox /bin/busybox")) << ::testing::PrintToString(d.lines);
  EXPECT_TRUE(AnyLineHas(d.lines, "hello from run"));
  EXPECT_TRUE(AnyLineHas(d.lines, "to stderr"));
  EXPECT_TRUE(AnyLineHas(d.lines, " DONE "));
}

TEST(BuildOutputTest, ClassicSuccessStripsAnsiAndFindsImageId) {
  Decoded d = Decode(Fixture("classic_ok.jsonl"));
  EXPECT_FALSE(d.error.has_value());
  EXPECT_EQ(d.image_id.substr(0, 19), "sha256:fe99c1fc0ba8");
  EXPECT_THAT(d.lines, Contains("Step 2/4 : COPY busybox /bin/busybox"));
  EXPECT_THAT(d.lines, Contains("to stderr"));  // was wrapped in ESC[91m ... ESC[0m
  EXPECT_THAT(d.lines, Contains("Successfully tagged probe:1"));
}

TEST(BuildOutputTest, BuildkitRunFailureIsReportedFromTheStream) {
  Decoded d = Decode(Fixture("buildkit_run_fails.jsonl"));
  ASSERT_TRUE(d.error.has_value());
  EXPECT_THAT(*d.error, HasSubstr("exit code: 3"));
  EXPECT_TRUE(AnyLineHas(d.lines, "about to fail"));
  EXPECT_TRUE(d.image_id.empty());
}

TEST(BuildOutputTest, ClassicRunFailureIsReportedFromTheStream) {
  Decoded d = Decode(Fixture("classic_run_fails.jsonl"));
  ASSERT_TRUE(d.error.has_value());
  EXPECT_THAT(*d.error, HasSubstr("returned a non-zero code: 3"));
  EXPECT_THAT(d.lines, Contains("about to fail"));
}

TEST(BuildOutputTest, RefusedRequestBodyIsAnError) {
  Decoded d = Decode("{\"message\":\"dockerfile parse error line 1: unknown instruction: FROMM\"}\n");
  ASSERT_TRUE(d.error.has_value());
  EXPECT_EQ(*d.error, "dockerfile parse error line 1: unknown instruction: FROMM");
}

TEST(BuildOutputTest, PushProgressKeepsMilestonesAndDigest) {
  std::string push =
      "{\"status\":\"The push refers to repository [127.0.0.1:5000/app]\"}\n"
      "{\"status\":\"Pushing\",\"progressDetail\":{\"current\":512,\"total\":1024},\"id\":\"abc\"}\n"
      "{\"status\":\"Pushed\",\"progressDetail\":{},\"id\":\"abc\"}\n"
      "{\"status\":\"t1: digest: sha256:aa size: 527\"}\n"
      "{\"progressDetail\":{},\"aux\":{\"Tag\":\"t1\",\"Digest\":\"sha256:aa\",\"Size\":527}}\n";
  Decoded d;
  BuildOutputDecoder decoder([&](std::string_view line) { d.lines.emplace_back(line); });
  decoder.Feed(push);
  decoder.Finish();
  EXPECT_EQ(decoder.pushed_digest(), "sha256:aa");
  EXPECT_THAT(d.lines, Contains("abc: Pushed"));
  EXPECT_THAT(d.lines, Not(Contains(HasSubstr("Pushing"))));
  EXPECT_FALSE(decoder.error().has_value());
}

TEST(BuildOutputTest, StripAnsiRemovesColourSequences) {
  EXPECT_EQ(StripAnsi("\x1b[91mred\x1b[0m plain"), "red plain");
  EXPECT_EQ(StripAnsi("no escapes"), "no escapes");
}

}  // namespace
}  // namespace slipway::ctrl::build::docker
