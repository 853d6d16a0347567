// `slipway deploy [DIR]`: package, upload, CreateDeployment, follow its steps and build log
// (follow.h), print the URLs.
#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/context_upload.h"
#include "cli/deployment_view.h"
#include "cli/follow.h"
#include "cli/git_info.h"
#include "cli/interrupt.h"
#include "cli/progress.h"
#include "slipway/ctrl/v1/deployment.pb.h"
#include "slipway/ctrl/v1/openapi.pb.h"

namespace slipway::cli {
namespace {

namespace pb = slipway::ctrl::v1;

struct DeployOutcome {
  std::string deployment_id;
  std::optional<pb::Deployment> deployment;  // the last state seen
  std::vector<std::string> api_lines;  // the API changes against the live deployment, to print
  nlohmann::json api = nullptr;        // the same for --json
};

std::string_view ChangeLevelWord(int level) {
  if (level == pb::CHANGE_LEVEL_BREAKING) return "breaking";
  if (level == pb::CHANGE_LEVEL_WARNING) return "warning";
  return "info";
}

// The API changes of a finished deployment against the one live in its environment before it,
// as the control plane's contract check found them.
void CollectApiChanges(const CtrlApi& ctrl, DeployOutcome* out) {
  if (!out->deployment) return;
  const pb::Deployment& d = *out->deployment;
  if (d.openapi_check_note().empty()) return;
  out->api = {{"base_deployment_id", d.openapi_base_deployment_id()},
              {"has_breaking_changes", d.openapi_has_breaking_changes()},
              {"held_back", d.held_back_by_breaking_changes()},
              {"note", d.openapi_check_note()},
              {"changes", nlohmann::json::array()}};
  if (d.openapi_base_deployment_id().empty()) {
    out->api_lines.push_back("API changes: none compared: " + d.openapi_check_note());
    return;
  }
  pb::GetOpenApiDiffRequest req;
  req.set_old_deployment_id(d.openapi_base_deployment_id());
  req.set_new_deployment_id(d.id());
  pb::GetOpenApiDiffResponse diff;
  Status st = ctrl.Call("OpenApiService", "GetOpenApiDiff", req, &diff);
  if (!st.ok()) {
    out->api_lines.push_back("API changes: the diff could not be fetched: " + st.message());
    return;
  }
  int counts[4] = {0, 0, 0, 0};
  for (const auto& c : diff.changes()) ++counts[c.level() >= 0 && c.level() <= 3 ? c.level() : 0];
  out->api_lines.push_back(fmt::format(
      "API changes against {}: {}", d.openapi_base_deployment_id(),
      diff.changes().empty()
          ? std::string("none")
          : fmt::format("{} breaking, {} warnings, {} compatible", counts[pb::CHANGE_LEVEL_BREAKING],
                        counts[pb::CHANGE_LEVEL_WARNING], counts[pb::CHANGE_LEVEL_INFO])));
  for (const auto& c : diff.changes()) {
    out->api_lines.push_back(fmt::format("  {:<8} {} {} {}: {}", ChangeLevelWord(c.level()), c.method(),
                                         c.path(), c.kind(), c.text()));
    out->api["changes"].push_back({{"kind", c.kind()},
                                   {"level", ChangeLevelWord(c.level())},
                                   {"path", c.path()},
                                   {"method", c.method()},
                                   {"operation_id", c.operation_id()},
                                   {"text", c.text()}});
  }
  if (d.held_back_by_breaking_changes()) {
    out->api_lines.push_back(fmt::format(
        "Not moved to the {} hosts: its API has breaking changes and --fail-on-breaking (or "
        "[deploy] fail_on_breaking) is set; {} still serves {}. It answers on its own URL above.",
        d.environment(), d.openapi_base_deployment_id(), d.environment()));
  }
}

void SetResources(const ProjectSettings& s, pb::ResourceSpec* r) {
  r->set_replicas(s.replicas);
  r->set_cpu_millicores(s.cpu_millicores);
  r->set_memory_mib(s.memory_mib);
  r->set_port(s.port);
  r->set_health_check_path(s.health_check_path);
  for (const auto& [k, v] : s.env) (*r->mutable_env())[k] = v;
}

Status Deploy(const DeployCommandOptions& o, Console& console, DeployOutcome* out) {
  SLIPWAY_ASSIGN_OR_RETURN(ProjectSettings settings, LoadProjectSettings(o.dir, o.project));
  if (o.image.empty()) SLIPWAY_RETURN_IF_ERROR(CheckDockerfile(settings));
  SLIPWAY_ASSIGN_OR_RETURN(auto ctrl, OpenCtrl(o.common.connection));

  pb::CreateDeploymentRequest req;
  req.set_project(settings.project);
  req.set_environment(settings.environment);
  GitInfo git = ReadGitInfo(settings.dir);
  req.set_branch(settings.branch.empty() ? git.branch : settings.branch);
  req.mutable_git()->set_commit_sha(git.commit_sha);
  req.mutable_git()->set_commit_message(git.commit_message);
  req.mutable_git()->set_author(git.author);
  SetResources(settings, req.mutable_resources());
  req.set_fail_on_breaking(o.fail_on_breaking || settings.fail_on_breaking);
  if (o.image.empty()) {
    SLIPWAY_ASSIGN_OR_RETURN(UploadedContext context, UploadContext(settings, *ctrl, console));
    auto* source = req.mutable_context();
    source->set_context_key(context.context_key);
    source->set_dockerfile(context.dockerfile);
    source->set_platform(settings.platform);
    source->set_target(settings.target);
    source->set_no_cache(settings.no_cache);
    for (const auto& [k, v] : settings.build_args) (*source->mutable_build_args())[k] = v;
  } else {
    req.set_image(o.image);
  }

  pb::CreateDeploymentResponse resp;
  SLIPWAY_RETURN_IF_ERROR(ctrl->Call("DeploymentService", "CreateDeployment", req, &resp));
  out->deployment_id = resp.deployment_id();
  console.Line(fmt::format("Deployment {} created (project {}, {}{})", out->deployment_id,
                           settings.project,
                           settings.environment.empty() ? "production" : settings.environment,
                           req.branch().empty() ? "" : ", branch " + req.branch()));
  SLIPWAY_RETURN_IF_ERROR(FollowDeployment(*ctrl, out->deployment_id, o.common.poll_interval,
                                           console, &out->deployment));
  CollectApiChanges(*ctrl, out);
  return Status::Ok();
}

Status Redeploy(const RedeployCommandOptions& o, Console& console, DeployOutcome* out) {
  if (o.deployment_id.empty()) {
    return Status::InvalidArgument("which deployment? pass its id: slipway redeploy dep_...");
  }
  SLIPWAY_ASSIGN_OR_RETURN(auto ctrl, OpenCtrl(o.common.connection));
  pb::RedeployRequest req;
  req.set_deployment_id(o.deployment_id);
  req.set_no_cache(o.no_cache);
  pb::CreateDeploymentResponse resp;
  SLIPWAY_RETURN_IF_ERROR(ctrl->Call("DeploymentService", "Redeploy", req, &resp));
  out->deployment_id = resp.deployment_id();
  console.Line(fmt::format("Deployment {} created from the source of {}{}", out->deployment_id,
                           o.deployment_id, o.no_cache ? ", building every step again" : ""));
  return FollowDeployment(*ctrl, out->deployment_id, o.common.poll_interval, console,
                          &out->deployment);
}

// What `slipway deploy` and `slipway redeploy` end with: the URLs or why not, the JSON
// result, and the exit code.
int ReportDeployment(const CommonOptions& common, Console& console, const Status& st,
                     const DeployOutcome& outcome, std::chrono::steady_clock::time_point started) {
  bool ready =
      st.ok() && outcome.deployment && outcome.deployment->status() == pb::DEPLOYMENT_STATUS_READY;
  if (!st.ok() && st.code() == Code::kCanceled && Interrupted()) {
    console.Line(outcome.deployment_id.empty()
                     ? std::string("Interrupted")
                     : fmt::format("Interrupted: deployment {} goes on in the control plane; "
                                   "follow it with `slipway status {}`",
                                   outcome.deployment_id, outcome.deployment_id));
  } else if (!st.ok()) {
    console.Error(st.message());
    if (!outcome.deployment_id.empty()) {
      console.Line(
          fmt::format("The deployment may go on: see `slipway status {}`", outcome.deployment_id));
    }
  } else if (ready) {
    console.Line(fmt::format("Deployment {} is ready ({})", outcome.deployment_id,
                             FormatElapsed(std::chrono::steady_clock::now() - started)));
    for (const auto& url : outcome.deployment->urls()) console.Line("  " + url);
    for (const auto& line : outcome.api_lines) console.Line(line);
  } else {
    const pb::Deployment& d = *outcome.deployment;
    console.Error(fmt::format("deployment {} failed{}: {}", d.id(),
                              d.failed_step().empty() ? "" : " at step " + d.failed_step(),
                              d.error().empty() ? "no reason given" : d.error()));
  }
  if (common.json) {
    nlohmann::json result;
    if (outcome.deployment) {
      result = DeploymentJson(*outcome.deployment, NowMs());
      if (!st.ok()) result["error"] = st.message();
      if (!outcome.api.is_null()) result["api_changes"] = outcome.api;
    } else {
      result = {{"deployment_id", outcome.deployment_id},
                {"status", "ERROR"},
                {"urls", nlohmann::json::array()},
                {"error", st.message()},
                {"failed_step", ""}};
    }
    console.Result(result.dump());
  }
  if (ready) return outcome.deployment->held_back_by_breaking_changes() ? 1 : 0;
  return Interrupted() ? kInterruptedExit : 1;
}

}  // namespace

int RunDeployCommand(const DeployCommandOptions& o, Console& console) {
  DeployOutcome outcome;
  auto started = std::chrono::steady_clock::now();
  Status st = Deploy(o, console, &outcome);
  return ReportDeployment(o.common, console, st, outcome, started);
}

int RunRedeployCommand(const RedeployCommandOptions& o, Console& console) {
  DeployOutcome outcome;
  auto started = std::chrono::steady_clock::now();
  Status st = Redeploy(o, console, &outcome);
  return ReportDeployment(o.common, console, st, outcome, started);
}

}  // namespace slipway::cli
