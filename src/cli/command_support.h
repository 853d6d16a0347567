// What the CLI commands share: opening the control plane from flags, environment and the dev
// credentials file; loading a project's settings; printing builder log lines.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "cli/console.h"
#include "cli/ctrl_api.h"
#include "cli/project_config.h"

namespace slipway::cli {

// The control plane as the flags, the environment and the dev credentials file say (in that
// order; see credentials.h). No network traffic yet. Each call may take up to `timeout`.
Result<std::unique_ptr<CtrlApi>> OpenCtrl(const ConnectionFlags& flags,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

// slipway.toml in `dir` merged with the flags.
Result<ProjectSettings> LoadProjectSettings(const std::filesystem::path& dir,
                                            const ProjectFlags& flags);

// One line of a builder's log, without its line ending and with `indent` before it; blank
// lines are dropped.
void PrintLogLine(Console& console, std::string_view text, std::string_view indent);

// Waits `interval` between two polls. On a terminal the status line is redrawn from
// `status_line` every quarter second meanwhile, so elapsed times tick even with slow polls.
// Canceled when the user interrupts (interrupt.h).
Status WaitForNextPoll(Console& console, std::chrono::milliseconds interval,
                       const std::function<std::string()>& status_line);

// How long a poll loop keeps going while the control plane does not answer.
inline constexpr std::chrono::seconds kControlPlanePatience{60};

// The on_retry of CtrlApi::CallPatiently for poll loops: says once that the control plane is
// away and that the CLI keeps trying.
std::function<void(const Status&)> ReportOutage(Console& console);

}  // namespace slipway::cli
