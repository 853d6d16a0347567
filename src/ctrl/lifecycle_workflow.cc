#include "ctrl/lifecycle_workflow.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "ctrl/deployment_ops.h"
#include "ctrl/routing.h"

namespace slipway::ctrl {
namespace {

using Json = nlohmann::json;

Result<SwitchInput> DecodeSwitchInput(const std::string& text) {
  Json j = Json::parse(text, nullptr, false);
  if (!j.is_object()) return Status::Internal("unreadable switch input: " + text);
  return SwitchInput{j.value("deployment_id", ""), j.value("environment", ""),
                     j.value("with_branch_host", false)};
}

Status RunSwitch(const WorkflowDeps& deps, workflow::RunContext& ctx) {
  SLIPWAY_ASSIGN_OR_RETURN(SwitchInput in, DecodeSwitchInput(ctx.input()));
  SLIPWAY_ASSIGN_OR_RETURN(DeploymentRecord target, deps.store->GetDeploymentById(in.deployment_id));
  DeploymentOps ops(deps, ctx, target);
  SLIPWAY_RETURN_IF_ERROR(ops.RequireKrane());

  // Its instances may have been stopped since it was live: start them from the pinned image
  // and wait until every one is ready, within the same journaled deadline a deploy has.
  SLIPWAY_ASSIGN_OR_RETURN(auto deadline, ctx.Deadline("start", deps.wait_deadline));
  SLIPWAY_RETURN_IF_ERROR(
      ctx.Step("start",
               [&]() -> Result<std::string> {
                 SLIPWAY_ASSIGN_OR_RETURN(bool running, ops.AllRunning());
                 if (running) return std::string("every instance was running");
                 // Deployments recorded before images were kept for image sources have only it.
                 const std::string& image =
                     target.image.empty() ? target.source_image : target.image;
                 spdlog::info("deployment {}: starting its instances again from {}", target.id,
                              image);
                 SLIPWAY_RETURN_IF_ERROR(ops.Schedule(image).status());
                 SLIPWAY_ASSIGN_OR_RETURN(std::string ready, ops.WaitForInstances(deadline));
                 SLIPWAY_RETURN_IF_ERROR(deps.partition->MarkStopped(target.id, false));
                 SLIPWAY_RETURN_IF_ERROR(deps.store->MarkStopped(target.id, false));
                 return ready;
               },
               workflow::RetryPolicy{1})
          .status());

  std::vector<DeploymentHost> hosts;
  for (const auto& h : DeploymentHostnames({target.project_name, in.environment, target.branch,
                                            target.id, deps.apex_domain})) {
    if (h.kind == HostKind::kEnvironment || (h.kind == HostKind::kBranch && in.with_branch_host)) {
      hosts.push_back(h);
    }
  }
  SLIPWAY_ASSIGN_OR_RETURN(std::string moved,
                           ctx.Step("route", [&] { return ops.MoveHosts(hosts, in.environment); }));
  ctx.SetOutput(moved);
  return Status::Ok();
}

Status RunDelete(const WorkflowDeps& deps, workflow::RunContext& ctx) {
  SLIPWAY_ASSIGN_OR_RETURN(DeploymentRecord d, deps.store->GetDeploymentById(ctx.input()));
  DeploymentOps ops(deps, ctx, d);
  std::string summary;
  if (ops.RequireKrane().ok()) {
    SLIPWAY_ASSIGN_OR_RETURN(summary, ctx.Step("instances", [&] { return ops.RemoveInstances(); }));
  }
  SLIPWAY_RETURN_IF_ERROR(ctx.Step("hosts", [&]() -> Result<std::string> {
                                SLIPWAY_RETURN_IF_ERROR(deps.store->ReleaseDomains(d.id));
                                return std::string("hosts released");
                              }).status());
  SLIPWAY_ASSIGN_OR_RETURN(
      std::string context,
      ctx.Step("context", [&]() -> Result<std::string> {
        if (d.context_key.empty()) return std::string("no context (deployed from an image)");
        SLIPWAY_ASSIGN_OR_RETURN(int64_t users, deps.store->ContextUsers(d.context_key, d.id));
        if (users > 0) {
          return fmt::format("context kept: {} other deployment(s) or build(s) use it", users);
        }
        Status del = deps.s3->DeleteObject(deps.bucket, d.context_key);
        if (!del.ok() && del.code() != Code::kNotFound) {
          return del.WithContext("deleting the context " + d.context_key);
        }
        return std::string("context deleted");
      }));
  summary += (summary.empty() ? "" : "; ") + context;
  SLIPWAY_RETURN_IF_ERROR(deps.store->MarkDeploymentDeleted(d.id));
  ctx.SetOutput(summary);
  return Status::Ok();
}

}  // namespace

std::string EncodeSwitchInput(const SwitchInput& in) {
  return Json{{"deployment_id", in.deployment_id},
              {"environment", in.environment},
              {"with_branch_host", in.with_branch_host}}
      .dump();
}

void RegisterLifecycleWorkflows(workflow::WorkflowEngine& engine, const WorkflowDeps& deps) {
  engine.Register(std::string(kSwitchWorkflow),
                  [&deps](workflow::RunContext& ctx) { return RunSwitch(deps, ctx); });
  engine.Register(std::string(kDeleteWorkflow),
                  [&deps](workflow::RunContext& ctx) { return RunDelete(deps, ctx); });
}

}  // namespace slipway::ctrl
