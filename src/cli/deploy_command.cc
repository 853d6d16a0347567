// `slipway deploy [DIR]`: package, upload, CreateDeployment, follow its steps and build log,
// print the URLs.
#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/context_upload.h"
#include "cli/deployment_view.h"
#include "cli/git_info.h"
#include "cli/interrupt.h"
#include "cli/progress.h"
#include "slipway/ctrl/v1/deployment.pb.h"

namespace slipway::cli {
namespace {

namespace pb = slipway::ctrl::v1;

bool IsFinal(int status) {
  return status == pb::DEPLOYMENT_STATUS_READY || status == pb::DEPLOYMENT_STATUS_FAILED;
}

// Prints what changed between two polls of a deployment: a step that started, one that
// finished (with its time and error), new build log lines; and, for the terminal's status
// line, the running step with its elapsed time.
class DeploymentWatcher {
 public:
  explicit DeploymentWatcher(Console& console) : console_(console) {}

  void Show(const pb::GetDeploymentResponse& resp) {
    int64_t now = NowMs();
    const pb::Deployment& d = resp.deployment();
    // Log lines belong to the build step: they are printed after its start line.
    bool logs_printed = false;
    auto print_logs = [&] {
      if (logs_printed) return;
      logs_printed = true;
      for (const auto& line : resp.build_log()) {
        PrintLogLine(console_, line.text(), "    ");
        log_after_ = line.seq();
      }
    };
    running_.reset();
    for (const auto& step : d.steps()) {
      int& seen = seen_[step.name()];
      bool started =
          step.status() != pb::STEP_STATUS_PENDING && step.status() != pb::STEP_STATUS_UNSPECIFIED;
      bool finished =
          step.status() == pb::STEP_STATUS_SUCCEEDED || step.status() == pb::STEP_STATUS_FAILED;
      if (started && seen < pb::STEP_STATUS_RUNNING) {
        console_.Line(fmt::format("  {:<10} started", step.name()));
        seen = pb::STEP_STATUS_RUNNING;
      }
      if (step.name() == "build") print_logs();
      if (finished && seen != step.status()) {
        console_.Line(FormatStep(step, now));
        seen = step.status();
      }
      if (step.status() == pb::STEP_STATUS_RUNNING) running_ = step;
    }
    print_logs();
    final_ = IsFinal(d.status());
    status_ = DeploymentStatusName(d.status());
    if (final_) console_.ClearStatusLine();
  }

  // The terminal's status line: the running step and how long it has run; empty once the
  // deployment is over.
  std::string StatusLine() const {
    if (final_) return "";
    if (!running_) return fmt::format("  {}", status_);
    return fmt::format("  {:<10} running   {}", running_->name(),
                       FormatElapsed(std::chrono::milliseconds(StepElapsedMs(*running_, NowMs()))));
  }

  int64_t log_after() const { return log_after_; }

 private:
  Console& console_;
  std::map<std::string, int> seen_;  // step name -> last status printed
  std::optional<pb::DeploymentStep> running_;
  std::string status_;
  bool final_ = false;
  int64_t log_after_ = 0;
};

struct DeployOutcome {
  std::string deployment_id;
  std::optional<pb::Deployment> deployment;  // the last state seen
};

Status FollowDeployment(const CtrlApi& ctrl, const CommonOptions& common, Console& console,
                        DeployOutcome* out) {
  DeploymentWatcher watcher(console);
  pb::GetDeploymentRequest req;
  req.set_deployment_id(out->deployment_id);
  while (true) {
    req.set_log_after(watcher.log_after());
    pb::GetDeploymentResponse resp;
    SLIPWAY_RETURN_IF_ERROR(ctrl.CallPatiently("DeploymentService", "GetDeployment", req, &resp,
                                               kControlPlanePatience, ReportOutage(console)));
    watcher.Show(resp);
    out->deployment = resp.deployment();
    if (IsFinal(resp.deployment().status())) {
      console.ClearStatusLine();
      return Status::Ok();
    }
    SLIPWAY_RETURN_IF_ERROR(
        WaitForNextPoll(console, common.poll_interval, [&] { return watcher.StatusLine(); }));
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
  if (o.image.empty()) {
    SLIPWAY_ASSIGN_OR_RETURN(UploadedContext context, UploadContext(settings, *ctrl, console));
    auto* source = req.mutable_context();
    source->set_context_key(context.context_key);
    source->set_dockerfile(context.dockerfile);
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
  return FollowDeployment(*ctrl, o.common, console, out);
}

}  // namespace

int RunDeployCommand(const DeployCommandOptions& o, Console& console) {
  DeployOutcome outcome;
  auto started = std::chrono::steady_clock::now();
  Status st = Deploy(o, console, &outcome);
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
  } else {
    const pb::Deployment& d = *outcome.deployment;
    console.Error(fmt::format("deployment {} failed{}: {}", d.id(),
                              d.failed_step().empty() ? "" : " at step " + d.failed_step(),
                              d.error().empty() ? "no reason given" : d.error()));
  }
  if (o.common.json) {
    nlohmann::json result;
    if (outcome.deployment) {
      result = DeploymentJson(*outcome.deployment, NowMs());
      if (!st.ok()) result["error"] = st.message();
    } else {
      result = {{"deployment_id", outcome.deployment_id},
                {"status", "ERROR"},
                {"urls", nlohmann::json::array()},
                {"error", st.message()},
                {"failed_step", ""}};
    }
    console.Result(result.dump());
  }
  if (ready) return 0;
  return Interrupted() ? kInterruptedExit : 1;
}

}  // namespace slipway::cli
