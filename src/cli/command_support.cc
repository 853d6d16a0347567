#include "cli/command_support.h"

#include "cli/interrupt.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <thread>

namespace slipway::cli {

Result<std::unique_ptr<CtrlApi>> OpenCtrl(const ConnectionFlags& flags,
                                          std::chrono::milliseconds timeout) {
  EnvLookup env = ProcessEnvironment();
  SLIPWAY_ASSIGN_OR_RETURN(Connection c, ResolveConnection(flags, env, DevCredentialsPath(env)));
  return std::make_unique<CtrlApi>(std::move(c), timeout);
}

Result<ProjectSettings> LoadProjectSettings(const std::filesystem::path& dir,
                                            const ProjectFlags& flags) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return Status::InvalidArgument(fmt::format(
        "\"{}\" is not a directory: pass the directory of the project (the one holding its "
        "Dockerfile), or run the command inside it",
        dir.string()));
  }
  SLIPWAY_ASSIGN_OR_RETURN(ProjectConfig config, LoadProjectConfig(dir));
  return ResolveProjectSettings(dir, config, flags);
}

void PrintLogLine(Console& console, std::string_view text, std::string_view indent) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  if (text.find_first_not_of(" \t") == std::string_view::npos) return;
  console.Line(fmt::format("{}{}", indent, text));
}

Status WaitForNextPoll(Console& console, std::chrono::milliseconds interval,
                       const std::function<std::string()>& status_line) {
  auto until = std::chrono::steady_clock::now() + interval;
  auto next_draw = std::chrono::steady_clock::now();
  while (true) {
    if (Interrupted()) return Status::Canceled("interrupted");
    auto now = std::chrono::steady_clock::now();
    if (console.tty() && status_line && now >= next_draw) {
      std::string text = status_line();
      if (!text.empty()) console.StatusLine(text);
      next_draw = now + std::chrono::milliseconds(250);
    }
    if (now >= until) return Status::Ok();
    // Short slices, so an interrupt is noticed at once.
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(50)));
  }
}

std::function<void(const Status&)> ReportOutage(Console& console) {
  auto reported = std::make_shared<bool>(false);
  return [&console, reported](const Status& st) {
    if (*reported) return;
    *reported = true;
    console.Line(fmt::format("Lost the control plane for now ({}); still trying", st.message()));
  };
}

}  // namespace slipway::cli
