// `slipway logs ID [--follow] [--instance N] [--since 10m] [--tail N]`: what a deployment's
// instances print, from krane through the control plane. --follow asks again every poll
// interval for the lines written after the last one shown, until Ctrl-C.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/interrupt.h"
#include "slipway/ctrl/v1/deployment.pb.h"

namespace slipway::cli {
namespace {

namespace pb = slipway::ctrl::v1;

Status ShowLogs(const LogsCommandOptions& o, Console& console) {
  if (o.deployment_id.empty()) {
    return Status::InvalidArgument("which deployment? pass its id: slipway logs dep_...");
  }
  SLIPWAY_ASSIGN_OR_RETURN(auto ctrl, OpenCtrl(o.common.connection));
  pb::GetLogsRequest req;
  req.set_deployment_id(o.deployment_id);
  if (o.instance >= 0) req.set_instance(o.instance);
  if (o.since.count() > 0) {
    const auto from = std::chrono::system_clock::now() - o.since;
    req.set_after_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(from.time_since_epoch()).count());
  } else if (o.tail > 0) {
    req.set_tail(o.tail);
  }
  // Without --follow the log is shown up to when the command started, however fast the app
  // writes more.
  const int64_t started_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  for (bool first = true;; first = false) {
    pb::GetLogsResponse resp;
    Status st = first ? ctrl->Call("DeploymentService", "GetLogs", req, &resp)
                      : ctrl->CallPatiently("DeploymentService", "GetLogs", req, &resp,
                                            kControlPlanePatience, ReportOutage(console));
    SLIPWAY_RETURN_IF_ERROR(st);
    const int64_t shown_until = req.after_ns();
    for (const auto& l : resp.lines()) {
      if (o.common.json) {
        console.Result(nlohmann::json{{"instance", l.instance_id()},
                                      {"time_ns", l.time_ns()},
                                      {"stream", l.stream()},
                                      {"text", l.text()}}
                           .dump());
      } else {
        console.Line(fmt::format("{} | {}", l.instance_id(), l.text()));
      }
      req.set_after_ns(std::max(req.after_ns(), l.time_ns()));
    }
    req.set_tail(0);  // from now on: everything after the last line shown
    // An answer is bounded (an app flooding its log): the rest is asked for at once.
    // (Lines without a time cannot be resumed after: those end it.)
    if (resp.more() && req.after_ns() > shown_until && (o.follow || req.after_ns() < started_ns)) {
      continue;
    }
    if (!o.follow) return Status::Ok();
    SLIPWAY_RETURN_IF_ERROR(WaitForNextPoll(console, o.common.poll_interval, [] { return std::string(); }));
  }
}

}  // namespace

int RunLogsCommand(const LogsCommandOptions& o, Console& console) {
  Status st = ShowLogs(o, console);
  if (st.ok()) return 0;
  if (st.code() == Code::kCanceled && Interrupted()) return 0;  // Ctrl-C ends --follow
  console.Error(st.message());
  return 1;
}

}  // namespace slipway::cli
