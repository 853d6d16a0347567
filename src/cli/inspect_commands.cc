// `slipway status ID [--follow]` and `slipway list`: what the control plane knows about
// deployments.
#include <fmt/format.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/deployment_view.h"
#include "cli/follow.h"
#include "slipway/ctrl/v1/deployment.pb.h"

namespace slipway::cli {
namespace {

namespace pb = slipway::ctrl::v1;

// Runs `body`; on failure prints the error (and with --json an {"error": ...} object).
int Report(const CommonOptions& common, Console& console, const Status& st) {
  if (st.ok()) return 0;
  console.Error(st.message());
  if (common.json) console.Result(nlohmann::json{{"error", st.message()}}.dump());
  return 1;
}

Status ShowStatus(const StatusCommandOptions& o, Console& console) {
  if (o.deployment_id.empty()) {
    return Status::InvalidArgument("which deployment? pass its id: slipway status dep_...");
  }
  SLIPWAY_ASSIGN_OR_RETURN(auto ctrl, OpenCtrl(o.common.connection));
  pb::Deployment deployment;
  if (o.follow) {
    std::optional<pb::Deployment> last;
    SLIPWAY_RETURN_IF_ERROR(
        FollowDeployment(*ctrl, o.deployment_id, o.common.poll_interval, console, &last));
    deployment = std::move(*last);
  } else {
    pb::GetDeploymentRequest req;
    req.set_deployment_id(o.deployment_id);
    // Status wants the deployment, not its build log: skip the lines.
    req.set_log_after(std::numeric_limits<int64_t>::max());
    pb::GetDeploymentResponse resp;
    SLIPWAY_RETURN_IF_ERROR(ctrl->Call("DeploymentService", "GetDeployment", req, &resp));
    deployment = resp.deployment();
  }
  int64_t now = NowMs();
  if (o.common.json) {
    console.Result(DeploymentJson(deployment, now).dump());
  } else {
    for (const auto& line : FormatDeployment(deployment, now)) console.Line(line);
  }
  return Status::Ok();
}

Status ShowList(const ListCommandOptions& o, Console& console) {
  SLIPWAY_ASSIGN_OR_RETURN(auto ctrl, OpenCtrl(o.common.connection));
  pb::ListDeploymentsRequest req;
  req.set_project(o.project);
  req.set_limit(o.limit);
  pb::ListDeploymentsResponse resp;
  SLIPWAY_RETURN_IF_ERROR(ctrl->Call("DeploymentService", "ListDeployments", req, &resp));
  int64_t now = NowMs();
  if (o.common.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& d : resp.deployments()) list.push_back(DeploymentJson(d, now));
    console.Result(nlohmann::json{{"deployments", std::move(list)}}.dump());
    return Status::Ok();
  }
  if (resp.deployments_size() == 0) {
    console.Line(o.project.empty()
                     ? "No deployments yet: run `slipway deploy` in a project directory"
                     : fmt::format("No deployments of project {} yet", o.project));
    return Status::Ok();
  }
  std::vector<const pb::Deployment*> list;
  for (const auto& d : resp.deployments()) list.push_back(&d);
  for (const auto& line : FormatDeploymentTable(list, now)) console.Line(line);
  return Status::Ok();
}

}  // namespace

int RunStatusCommand(const StatusCommandOptions& o, Console& console) {
  return Report(o.common, console, ShowStatus(o, console));
}

int RunListCommand(const ListCommandOptions& o, Console& console) {
  if (o.limit < 1 || o.limit > 200) {
    return Report(
        o.common, console,
        Status::InvalidArgument(fmt::format("--limit must be between 1 and 200, not {}", o.limit)));
  }
  return Report(o.common, console, ShowList(o, console));
}

}  // namespace slipway::cli
