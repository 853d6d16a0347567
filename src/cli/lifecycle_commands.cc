// `slipway rollback`, `slipway promote` and `slipway delete`: each one call to the control
// plane, which answers once the change is done (hosts moved, instances removed).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/deployment_view.h"
#include "slipway/ctrl/v1/deployment.pb.h"

namespace slipway::cli {
namespace {

namespace pb = slipway::ctrl::v1;

// These calls wait for the change on the server: minutes when stopped instances start again.
constexpr std::chrono::minutes kLifecycleCallTimeout{7};

int Finish(const CommonOptions& common, Console& console, const Status& st,
           const pb::Deployment* d, const std::string& done, const std::string& summary = "") {
  if (!st.ok()) {
    console.Error(st.message());
    if (common.json) console.Result(nlohmann::json{{"error", st.message()}}.dump());
    return 1;
  }
  console.Line(done);
  if (common.json) {
    nlohmann::json j = DeploymentJson(*d, NowMs());
    if (!summary.empty()) j["summary"] = summary;
    console.Result(j.dump());
  } else {
    for (const auto& url : d->urls()) console.Line("  " + url);
  }
  return 0;
}

std::string Live(const pb::Deployment& d) {
  std::string out;
  for (const auto& e : d.live_environments()) out += (out.empty() ? "" : ", ") + e;
  return out;
}

}  // namespace

int RunRollbackCommand(const RollbackCommandOptions& o, Console& console) {
  pb::RollbackResponse resp;
  Status st = [&]() -> Status {
    ProjectFlags flags;
    flags.project = o.project;
    SLIPWAY_ASSIGN_OR_RETURN(ProjectSettings settings, LoadProjectSettings(o.dir, flags));
    SLIPWAY_ASSIGN_OR_RETURN(auto ctrl, OpenCtrl(o.common.connection, kLifecycleCallTimeout));
    pb::RollbackRequest req;
    req.set_project(settings.project);
    req.set_environment(!o.environment.empty() ? o.environment : settings.environment);
    req.set_to_deployment_id(o.to);
    return ctrl->Call("DeploymentService", "Rollback", req, &resp);
  }();
  return Finish(o.common, console, st, &resp.deployment(),
                fmt::format("Rolled back: {} now serves {}", resp.deployment().id(),
                            Live(resp.deployment())));
}

int RunPromoteCommand(const PromoteCommandOptions& o, Console& console) {
  pb::PromoteResponse resp;
  Status st = [&]() -> Status {
    if (o.deployment_id.empty()) {
      return Status::InvalidArgument("which deployment? pass its id: slipway promote dep_...");
    }
    SLIPWAY_ASSIGN_OR_RETURN(auto ctrl, OpenCtrl(o.common.connection, kLifecycleCallTimeout));
    pb::PromoteRequest req;
    req.set_deployment_id(o.deployment_id);
    req.set_environment(o.environment);
    return ctrl->Call("DeploymentService", "Promote", req, &resp);
  }();
  return Finish(o.common, console, st, &resp.deployment(),
                fmt::format("Promoted: {} now serves {}", resp.deployment().id(),
                            Live(resp.deployment())));
}

int RunDeleteCommand(const DeleteCommandOptions& o, Console& console) {
  pb::DeleteDeploymentResponse resp;
  Status st = [&]() -> Status {
    if (o.deployment_id.empty()) {
      return Status::InvalidArgument("which deployment? pass its id: slipway delete dep_...");
    }
    SLIPWAY_ASSIGN_OR_RETURN(auto ctrl, OpenCtrl(o.common.connection, kLifecycleCallTimeout));
    pb::DeleteDeploymentRequest req;
    req.set_deployment_id(o.deployment_id);
    req.set_force(o.force);
    return ctrl->Call("DeploymentService", "DeleteDeployment", req, &resp);
  }();
  return Finish(o.common, console, st, &resp.deployment(),
                fmt::format("Deleted {}: {}", o.deployment_id, resp.summary()), resp.summary());
}

}  // namespace slipway::cli
