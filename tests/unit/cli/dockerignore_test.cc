// .dockerignore rules, written from Docker's documentation ("Build context" → ".dockerignore
// files") and the behaviour of moby/patternmatcher that the documentation describes.
#include "cli/dockerignore.h"

#include <gtest/gtest.h>

namespace slipway::cli {
namespace {

DockerIgnore MustParse(std::string_view text) {
  auto parsed = DockerIgnore::Parse(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  return parsed.ok() ? std::move(parsed).value() : DockerIgnore();
}

TEST(DockerIgnoreTest, CommentsBlankLinesAndSurroundingWhitespaceAreDropped) {
  DockerIgnore ignore = MustParse("# comment\n\n   \n\t  foo  \r\n  # not a comment: only column 0 is\n");
  ASSERT_EQ(ignore.patterns().size(), 2u);
  EXPECT_EQ(ignore.patterns()[0].text(), "foo");
  EXPECT_EQ(ignore.patterns()[1].text(), "# not a comment: only column 0 is");
  EXPECT_TRUE(ignore.Excludes("foo"));
  EXPECT_FALSE(ignore.Excludes("# comment"));
  EXPECT_FALSE(ignore.Excludes("comment"));
}

TEST(DockerIgnoreTest, ByteOrderMarkOnTheFirstLineIsDropped) {
  DockerIgnore ignore = MustParse("\xEF\xBB\xBF" "secret.env\n");
  EXPECT_TRUE(ignore.Excludes("secret.env"));
}

// The documentation's first example.
TEST(DockerIgnoreTest, DocsExampleTempPatterns) {
  DockerIgnore ignore = MustParse("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
  // */temp*: names starting with temp in any immediate subdirectory of the root.
  EXPECT_TRUE(ignore.Excludes("somedir/temporary.txt"));
  EXPECT_TRUE(ignore.Excludes("somedir/temp"));
  EXPECT_TRUE(ignore.Excludes("somedir/temp/inside.txt"));  // below an excluded directory
  EXPECT_FALSE(ignore.Excludes("temporary.txt"));           // not in a subdirectory
  EXPECT_FALSE(ignore.Excludes("somedir/notemp"));
  // */*/temp*: two levels below the root.
  EXPECT_TRUE(ignore.Excludes("somedir/subdir/temporary.txt"));
  EXPECT_FALSE(ignore.Excludes("a/b/c/temporary.txt"));  // three levels: no pattern reaches it
  // temp?: one more character after temp, in the root.
  EXPECT_TRUE(ignore.Excludes("tempa"));
  EXPECT_TRUE(ignore.Excludes("tempb"));
  EXPECT_FALSE(ignore.Excludes("temp"));
  EXPECT_FALSE(ignore.Excludes("tempab"));
  EXPECT_FALSE(ignore.Excludes("x/atemp"));
}

TEST(DockerIgnoreTest, DoubleStarMatchesAnyNumberOfDirectoriesIncludingZero) {
  DockerIgnore ignore = MustParse("**/*.go\n");
  EXPECT_TRUE(ignore.Excludes("main.go"));
  EXPECT_TRUE(ignore.Excludes("cmd/main.go"));
  EXPECT_TRUE(ignore.Excludes("cmd/app/internal/main.go"));
  EXPECT_FALSE(ignore.Excludes("main.gox"));
  EXPECT_FALSE(ignore.Excludes("go.mod"));
  EXPECT_FALSE(ignore.Excludes("cmd/README.md"));

  DockerIgnore middle = MustParse("a/**/b\n");
  EXPECT_TRUE(middle.Excludes("a/b"));
  EXPECT_TRUE(middle.Excludes("a/x/b"));
  EXPECT_TRUE(middle.Excludes("a/x/y/b/file"));
  EXPECT_FALSE(middle.Excludes("a/xb"));
  EXPECT_FALSE(middle.Excludes("ab"));

  DockerIgnore everything = MustParse("**\n");
  EXPECT_TRUE(everything.Excludes("anything/at/all"));
}

TEST(DockerIgnoreTest, DockerShortcutsForLeadingAndTrailingDoubleStar) {
  // Docker matches a trailing ** after a literal prefix by prefix: the directory itself stays.
  DockerIgnore trailing = MustParse("foo/**\n");
  EXPECT_TRUE(trailing.Excludes("foo/x"));
  EXPECT_TRUE(trailing.Excludes("foo/x/y"));
  EXPECT_FALSE(trailing.Excludes("foo"));
  EXPECT_FALSE(trailing.Excludes("foobar"));
  // A leading ** before a literal rest matches by suffix.
  DockerIgnore leading = MustParse("**.log\n");
  EXPECT_TRUE(leading.Excludes("app.log"));
  EXPECT_TRUE(leading.Excludes("var/app.log"));
  EXPECT_FALSE(leading.Excludes("app.log.1"));
}

TEST(DockerIgnoreTest, StarAndQuestionMarkNeverCrossASlash) {
  DockerIgnore ignore = MustParse("a*b\nx?y\n");
  EXPECT_TRUE(ignore.Excludes("ab"));
  EXPECT_TRUE(ignore.Excludes("a-long-b"));
  EXPECT_FALSE(ignore.Excludes("a/b"));
  EXPECT_TRUE(ignore.Excludes("x-y"));
  EXPECT_FALSE(ignore.Excludes("x/y"));
  EXPECT_FALSE(ignore.Excludes("xy"));
}

TEST(DockerIgnoreTest, QuestionMarkMatchesOneCharacterNotOneByte) {
  DockerIgnore ignore = MustParse("caf?\n");
  EXPECT_TRUE(ignore.Excludes("caf\xC3\xA9"));  // café
  EXPECT_FALSE(ignore.Excludes("caf\xC3\xA9s"));
}

TEST(DockerIgnoreTest, CharacterClassesRangesNegationAndEscapes) {
  DockerIgnore ignore = MustParse("[a-c]at\n[^a-c]og\n\\*.txt\nfile[\\]]\n");
  EXPECT_TRUE(ignore.Excludes("bat"));
  EXPECT_FALSE(ignore.Excludes("dat"));
  EXPECT_TRUE(ignore.Excludes("dog"));
  EXPECT_FALSE(ignore.Excludes("bog"));
  EXPECT_TRUE(ignore.Excludes("*.txt"));
  EXPECT_FALSE(ignore.Excludes("notes.txt"));
  EXPECT_TRUE(ignore.Excludes("file]"));
  EXPECT_FALSE(ignore.Excludes("filex"));
}

TEST(DockerIgnoreTest, MalformedPatternsAreRefusedWithTheLine) {
  for (std::string_view bad : {"ok\n[a-\n", "ok\nabc\\\n", "ok\n[]\n", "ok\n[z\n"}) {
    auto parsed = DockerIgnore::Parse(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("line 2"), std::string::npos) << parsed.status().message();
  }
  auto lone = DockerIgnore::Parse("*\n!\n");
  ASSERT_FALSE(lone.ok());
  EXPECT_NE(lone.status().message().find("lone \"!\""), std::string::npos) << lone.status().message();
}

// "The root of the context is considered to be both the working and the root directory":
// /foo/bar and foo/bar are the same pattern, and filepath.Clean removes . and .. elements.
TEST(DockerIgnoreTest, PatternsAreCleanedAndLeadingSlashIsIgnored) {
  DockerIgnore ignore = MustParse("/foo/bar\n  ./baz/./qux/../quux/  \n");
  ASSERT_EQ(ignore.patterns().size(), 2u);
  EXPECT_EQ(ignore.patterns()[0].text(), "foo/bar");
  EXPECT_EQ(ignore.patterns()[1].text(), "baz/quux");
  EXPECT_TRUE(ignore.Excludes("foo/bar"));
  EXPECT_TRUE(ignore.Excludes("baz/quux/file"));
  EXPECT_FALSE(ignore.Excludes("baz/qux"));
}

TEST(DockerIgnoreTest, CleanPathFollowsGo) {
  EXPECT_EQ(CleanPath(""), ".");
  EXPECT_EQ(CleanPath("a//c"), "a/c");
  EXPECT_EQ(CleanPath("a/c/."), "a/c");
  EXPECT_EQ(CleanPath("a/c/b/.."), "a/c");
  EXPECT_EQ(CleanPath("/../a/c"), "/a/c");
  EXPECT_EQ(CleanPath("/../a/b/../././/c"), "/a/c");
  EXPECT_EQ(CleanPath("../../x"), "../../x");
  EXPECT_EQ(CleanPath("a/../.."), "..");
  EXPECT_EQ(CleanPath("/"), "/");
}

// The documentation: "*.md" then "!README.md" excludes markdown files right under the root
// except README.md.
TEST(DockerIgnoreTest, ExceptionReincludesReadme) {
  DockerIgnore ignore = MustParse("*.md\n!README.md\n");
  EXPECT_TRUE(ignore.Excludes("CHANGELOG.md"));
  EXPECT_FALSE(ignore.Excludes("README.md"));
  EXPECT_FALSE(ignore.Excludes("docs/guide.md"));  // *.md does not reach into directories
}

// The documentation: no markdown files but README files, and README-secret.md excluded after all.
TEST(DockerIgnoreTest, LaterPatternExcludesAgainAfterAnException) {
  DockerIgnore ignore = MustParse("*.md\n!README*.md\nREADME-secret.md\n");
  EXPECT_TRUE(ignore.Excludes("CHANGELOG.md"));
  EXPECT_FALSE(ignore.Excludes("README.md"));
  EXPECT_FALSE(ignore.Excludes("README-public.md"));
  EXPECT_TRUE(ignore.Excludes("README-secret.md"));
}

// The documentation: with the exception last, every README file is included, README-secret.md
// too: the last matching pattern wins.
TEST(DockerIgnoreTest, ExceptionLastWins) {
  DockerIgnore ignore = MustParse("*.md\nREADME-secret.md\n!README*.md\n");
  EXPECT_FALSE(ignore.Excludes("README-secret.md"));
  EXPECT_FALSE(ignore.Excludes("README.md"));
  EXPECT_TRUE(ignore.Excludes("CHANGELOG.md"));
}

TEST(DockerIgnoreTest, ExcludedDirectoryWithAnExceptionInside) {
  DockerIgnore ignore = MustParse("build\n!build/keep.txt\nnode_modules\n");
  EXPECT_TRUE(ignore.Excludes("build"));
  EXPECT_TRUE(ignore.Excludes("build/out.o"));
  EXPECT_FALSE(ignore.Excludes("build/keep.txt"));
  EXPECT_TRUE(ignore.Excludes("node_modules/left-pad/index.js"));
  // The walk must enter build/ to find keep.txt, but may skip node_modules/ whole.
  EXPECT_TRUE(ignore.MayReincludeBelow("build"));
  EXPECT_FALSE(ignore.MayReincludeBelow("node_modules"));
  EXPECT_FALSE(ignore.MayReincludeBelow("buildx"));

  // An exception that can match anywhere makes every excluded directory worth entering.
  DockerIgnore anywhere = MustParse("vendor\n!**/LICENSE\n");
  EXPECT_TRUE(anywhere.MayReincludeBelow("vendor"));
  EXPECT_FALSE(anywhere.Excludes("vendor/lib/LICENSE"));
  EXPECT_TRUE(anywhere.Excludes("vendor/lib/lib.c"));

  DockerIgnore none = MustParse("vendor\n");
  EXPECT_FALSE(none.MayReincludeBelow("vendor"));
}

// Docker always sends the Dockerfile and .dockerignore, even when a pattern excludes them.
TEST(DockerIgnoreTest, AlwaysIncludeOverridesEveryPattern) {
  DockerIgnore ignore = MustParse("*\napi\n.dockerignore\n");
  ignore.AlwaysInclude(".dockerignore");
  ignore.AlwaysInclude("api/Dockerfile");
  EXPECT_FALSE(ignore.Excludes(".dockerignore"));
  EXPECT_FALSE(ignore.Excludes("api/Dockerfile"));
  EXPECT_TRUE(ignore.Excludes("api/main.go"));
  EXPECT_TRUE(ignore.Excludes("other"));
  EXPECT_TRUE(ignore.MayReincludeBelow("api"));

  // Names with wildcard characters are taken literally.
  DockerIgnore odd = MustParse("*\n");
  odd.AlwaysInclude("Dockerfile[prod]");
  EXPECT_FALSE(odd.Excludes("Dockerfile[prod]"));
  EXPECT_TRUE(odd.Excludes("Dockerfilep"));

  // Nothing is added for a path no pattern excludes.
  DockerIgnore plain = MustParse("*.log\n");
  plain.AlwaysInclude("Dockerfile");
  EXPECT_EQ(plain.patterns().size(), 1u);
}

// Found by fuzz/dockerignore_fuzz.cc: a pattern with a byte that is not UTF-8 got a literal
// prefix spelling U+FFFD instead of that byte, so an exception below an excluded directory of
// such a name was never looked for, and the file it re-includes was left out of the context.
TEST(DockerIgnoreTest, ExceptionWhoseNameIsNotUtf8IsFoundBelowAnExcludedDirectory) {
  auto ignore = DockerIgnore::Parse("caf\xe9\n!caf\xe9/keep.txt\n");
  ASSERT_TRUE(ignore.ok()) << ignore.status().ToString();
  EXPECT_TRUE(ignore->Excludes("caf\xe9"));
  EXPECT_TRUE(ignore->MayReincludeBelow("caf\xe9"));
  EXPECT_FALSE(ignore->Excludes("caf\xe9/keep.txt"));
  for (const auto& pattern : ignore->patterns()) {
    EXPECT_TRUE(std::string_view("caf\xe9/keep.txt").starts_with(pattern.literal_prefix()))
        << pattern.text();
  }
}


}  // namespace
}  // namespace slipway::cli
