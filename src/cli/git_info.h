// What git says about the source being deployed: branch, commit, message, author. Read by
// running `git` in the project directory; a directory that is not a repository (or a machine
// without git) gives empty fields, never an error: git information is a courtesy.
#pragma once

#include <filesystem>
#include <string>

namespace slipway::cli {

struct GitInfo {
  std::string branch;          // empty on a detached HEAD
  std::string commit_sha;      // full hex
  std::string commit_message;  // the subject line
  std::string author;          // "Ada Lovelace <ada@example.com>"
};

GitInfo ReadGitInfo(const std::filesystem::path& dir);

}  // namespace slipway::cli
