// .dockerignore: which paths of a build context stay out of the archive sent to the builder.
//
// Promised: Docker's semantics, as its CLI and builders apply them (moby/patternmatcher and the
// ignore-file reader the CLI and BuildKit share), so a context packaged by slipway holds exactly
// the files `docker build` would send:
//   - a line starting with `#` is a comment; blank lines are skipped; leading and trailing
//     whitespace is trimmed (also after a leading `!`); a UTF-8 byte order mark is dropped;
//   - each pattern is cleaned like Go's filepath.Clean and a leading `/` is dropped, so `/a/./b/`
//     is `a/b`;
//   - Go filepath.Match syntax: `*` (any run of characters but `/`), `?` (one character but `/`),
//     `[...]` classes with ranges and `^` negation, `\` escaping the next character; plus `**`,
//     which matches any number of directories, zero included;
//   - a pattern that matches a directory matches everything below it;
//   - `!pattern` is an exception that re-includes what it matches; the last pattern matching a
//     path decides;
//   - Docker's own shortcuts are kept where they differ from a plain reading: a pattern that
//     starts with `**` and is otherwise literal matches by suffix (`**.go` matches `a/b.go`),
//     one that ends in `**` after a literal prefix matches by prefix (`foo/**` matches `foo/x`
//     but not `foo`).
// Not reproduced: Docker's regular-expression accidents in corner cases (`\d` inside a pattern
// is a literal `d` here, `*` inside `[...]` is a literal `*`).
//
// Thread-safety: a DockerIgnore is immutable after construction but for AlwaysInclude; const
// methods may be called from any thread.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace slipway::cli {

// One cleaned pattern of a .dockerignore, compiled for matching.
class IgnorePattern {
 public:
  // `pattern` is one cleaned line without its `!`; fails with InvalidArgument on a malformed
  // class or a trailing `\`, as Docker does.
  static Result<IgnorePattern> Compile(std::string_view pattern, bool exception);

  // Whether the pattern matches `path` itself (slash-separated, relative to the context root,
  // already clean). Parents are the caller's business: see DockerIgnore::Excludes.
  bool Matches(std::string_view path) const;

  bool exception() const { return exception_; }
  const std::string& text() const { return text_; }
  // The characters before the first wildcard or escape: every path the pattern matches starts
  // with it (empty for patterns that start with `**`).
  const std::string& literal_prefix() const { return literal_prefix_; }

  // One step of the compiled pattern (public only so the .cc's matcher can name it).
  struct Token {
    enum Kind { kLiteral, kAnyOne, kStar, kDirs, kAnyTail, kClass } kind = kLiteral;
    char32_t rune = 0;                                 // kLiteral
    bool negated = false;                              // kClass
    std::vector<std::pair<char32_t, char32_t>> ranges;  // kClass
  };

 private:
  enum class MatchType { kExact, kPrefix, kSuffix, kTokens };

  std::string text_;
  std::string literal_prefix_;
  bool exception_ = false;
  MatchType type_ = MatchType::kExact;
  std::vector<Token> tokens_;
};

class DockerIgnore {
 public:
  DockerIgnore() = default;  // ignores nothing

  // Parses the text of a .dockerignore file. Fails with InvalidArgument naming the line of a
  // malformed pattern (or a lone `!`).
  static Result<DockerIgnore> Parse(std::string_view contents);
  // Reads and parses `file`; a missing file ignores nothing.
  static Result<DockerIgnore> Load(const std::filesystem::path& file);

  // Whether `path` (slash-separated, relative to the context root, no `./`) stays out of the
  // context: the last pattern that matches the path or one of its parent directories decides.
  bool Excludes(std::string_view path) const;

  // For an excluded directory `dir`: whether some exception could re-include a path below it,
  // so the walk must go in and ask Excludes for each entry. False means the whole subtree is out.
  bool MayReincludeBelow(std::string_view dir) const;

  // Makes sure `path` is always sent, whatever the patterns say (the Dockerfile and the
  // .dockerignore, as Docker's CLI does): appends the exception `!path` when `path` is excluded.
  // `path` must be clean and relative.
  void AlwaysInclude(std::string_view path);

  const std::vector<IgnorePattern>& patterns() const { return patterns_; }

 private:
  std::vector<IgnorePattern> patterns_;
  bool has_exceptions_ = false;
};

// Go's filepath.Clean on a slash-separated path: one `/` between elements, no `.` elements,
// `..` folded into the element before it, no trailing `/`; "" becomes ".".
std::string CleanPath(std::string_view path);

}  // namespace slipway::cli
