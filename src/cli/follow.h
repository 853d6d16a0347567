// Following a deployment or a build until it is over, as `slipway deploy`, `slipway build` and
// `slipway status --follow` show it: each step's start and finish with its time, the build log
// lines, and on a terminal a status line with the running step's elapsed time.
//
// The progress comes from the control plane's stream (DeploymentService.WatchDeployment,
// BuildService.WatchBuild), message by message as ctrl commits it. When the stream cannot be
// opened (an older ctrl answers unimplemented), breaks before the end (ctrl restarting), or
// brings nothing at all for a while (a proxy that buffers it), the CLI says so in one line and
// asks GetDeployment / GetBuild every poll interval instead, from where the stream stopped: no
// line is printed twice. A refused token or an unknown id ends the follow with that error.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "base/status.h"
#include "cli/console.h"
#include "cli/ctrl_api.h"

namespace slipway::ctrl::v1 {
class Deployment;
class GetBuildResponse;
}  // namespace slipway::ctrl::v1

namespace slipway::cli {

// Follows deployment `id` until READY, FAILED or DELETED; *last gets the last state seen.
// Canceled when the user interrupts.
Status FollowDeployment(const CtrlApi& ctrl, const std::string& id,
                        std::chrono::milliseconds poll_interval, Console& console,
                        std::optional<ctrl::v1::Deployment>* last);

// Follows build `id` until SUCCEEDED or FAILED, printing its log; *last gets the last state.
Status FollowBuild(const CtrlApi& ctrl, const std::string& id,
                   std::chrono::milliseconds poll_interval, Console& console,
                   ctrl::v1::GetBuildResponse* last);

// How long the first message of a stream may take before the CLI takes the stream for held
// back by something in between and polls instead (ctrl sends the first one at once).
inline constexpr std::chrono::seconds kFirstStreamMessagePatience{10};

}  // namespace slipway::cli
