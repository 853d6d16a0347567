#include "cli/git_info.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <vector>

extern char** environ;

namespace slipway::cli {
namespace {

// Runs `git -C dir args...` without a shell; its stdout when it exits 0, else nullopt.
std::optional<std::string> Git(const std::filesystem::path& dir, std::vector<std::string> args) {
  std::vector<std::string> argv = {"git", "-C", dir.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return std::nullopt;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, "git", &actions, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    return std::nullopt;
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) text.append(buf, static_cast<size_t>(n));
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

}  // namespace

GitInfo ReadGitInfo(const std::filesystem::path& dir) {
  GitInfo info;
  // %H, author, subject on three lines; fails (nullopt) outside a repository or before the
  // first commit.
  auto log = Git(dir, {"log", "-1", "--format=%H%n%an <%ae>%n%s"});
  if (!log) return info;
  size_t a = log->find('\n');
  size_t b = a == std::string::npos ? std::string::npos : log->find('\n', a + 1);
  info.commit_sha = log->substr(0, a);
  if (a != std::string::npos)
    info.author = log->substr(a + 1, b == std::string::npos ? b : b - a - 1);
  if (b != std::string::npos) info.commit_message = log->substr(b + 1);
  auto branch = Git(dir, {"symbolic-ref", "--short", "-q", "HEAD"});
  if (branch) info.branch = *branch;
  return info;
}

}  // namespace slipway::cli
