// .dockerignore parsing and matching. Input: the file's text, a NUL, then paths (one per line)
// to ask about. Any file parses or fails with InvalidArgument; matching never crashes or hangs
// (patterns with many `*` and `**` are the risk), and the promises between the queries hold.
#include <cstdio>
#include <cstdlib>

#include "cli/dockerignore.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace slipway;
  fuzz::FuzzInput in(data, size);
  std::string_view file = in.Until(std::string_view("\0", 1));
  auto ignore = cli::DockerIgnore::Parse(file);
  if (!ignore.ok()) {
    SLIPWAY_FUZZ_CHECK(ignore.status().code() == Code::kInvalidArgument);
    return 0;
  }
  for (const auto& pattern : ignore->patterns()) {
    // Recompiling a pattern's own text gives a pattern again.
    SLIPWAY_FUZZ_CHECK(cli::IgnorePattern::Compile(pattern.text(), pattern.exception()).ok());
  }
  while (!in.empty()) {
    std::string path = cli::CleanPath(in.Line());
    // CleanPath is idempotent.
    SLIPWAY_FUZZ_CHECK(cli::CleanPath(path) == path);
    if (path == "." || path.rfind("../", 0) == 0 || path == ".." || path.front() == '/') continue;
    bool excluded = ignore->Excludes(path);
    for (const auto& pattern : ignore->patterns()) {
      // Every path a pattern matches starts with the pattern's literal prefix.
      if (pattern.Matches(path)) {
        SLIPWAY_FUZZ_CHECK(path.rfind(pattern.literal_prefix(), 0) == 0);
      }
    }
    if (excluded) (void)ignore->MayReincludeBelow(path);
    // AlwaysInclude keeps its promise: the path is sent afterwards.
    cli::DockerIgnore copy = *ignore;
    copy.AlwaysInclude(path);
    SLIPWAY_FUZZ_CHECK(!copy.Excludes(path));
  }
  return 0;
}
