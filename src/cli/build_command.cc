// `slipway build [DIR]`: package, upload, CreateBuild, follow the log, print the image.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/context_upload.h"
#include "cli/deployment_view.h"
#include "cli/follow.h"
#include "cli/interrupt.h"
#include "cli/progress.h"
#include "slipway/ctrl/v1/build.pb.h"

namespace slipway::cli {
namespace {

namespace pb = slipway::ctrl::v1;

struct BuildOutcome {
  std::string build_id;
  std::string status = "ERROR";  // until a build exists
  std::string image;
  std::string error;
};

// Follows the build to its end (follow.h), printing log lines as they arrive.
Status AwaitBuild(const CtrlApi& ctrl, const CommonOptions& common, Console& console,
                  BuildOutcome* out) {
  pb::GetBuildResponse last;
  Status st = FollowBuild(ctrl, out->build_id, common.poll_interval, console, &last);
  if (last.status() != pb::BUILD_STATUS_UNSPECIFIED) out->status = BuildStatusName(last.status());
  SLIPWAY_RETURN_IF_ERROR(st);
  out->image = last.image();
  out->error = last.error();
  return Status::Ok();
}

Status Build(const BuildCommandOptions& o, Console& console, BuildOutcome* out) {
  SLIPWAY_ASSIGN_OR_RETURN(ProjectSettings settings, LoadProjectSettings(o.dir, o.project));
  SLIPWAY_RETURN_IF_ERROR(CheckDockerfile(settings));
  SLIPWAY_ASSIGN_OR_RETURN(auto ctrl, OpenCtrl(o.common.connection));
  SLIPWAY_ASSIGN_OR_RETURN(UploadedContext context, UploadContext(settings, *ctrl, console));

  pb::CreateBuildRequest req;
  req.set_project(settings.project);
  req.set_context_key(context.context_key);
  req.set_dockerfile(context.dockerfile);
  req.set_platform(settings.platform);
  req.set_target(settings.target);
  req.set_no_cache(settings.no_cache);
  for (const auto& [k, v] : settings.build_args) (*req.mutable_build_args())[k] = v;
  pb::CreateBuildResponse resp;
  SLIPWAY_RETURN_IF_ERROR(ctrl->Call("BuildService", "CreateBuild", req, &resp));
  out->build_id = resp.build_id();
  out->status = "QUEUED";
  console.Line(fmt::format("Build {} started (project {})", out->build_id, settings.project));
  return AwaitBuild(*ctrl, o.common, console, out);
}

}  // namespace

int RunBuildCommand(const BuildCommandOptions& o, Console& console) {
  BuildOutcome outcome;
  auto started = std::chrono::steady_clock::now();
  Status st = Build(o, console, &outcome);
  if (!st.ok() && st.code() == Code::kCanceled && Interrupted()) {
    outcome.error = "interrupted";
    console.Line(
        outcome.build_id.empty()
            ? std::string("Interrupted")
            : fmt::format("Interrupted: build {} goes on in the control plane", outcome.build_id));
  } else if (!st.ok()) {
    outcome.error = st.message();
    console.Error(st.message());
  } else if (outcome.status == "SUCCEEDED") {
    console.Line(fmt::format("Built {} in {}", outcome.image,
                             FormatElapsed(std::chrono::steady_clock::now() - started)));
  } else {
    console.Error(
        fmt::format("build {} failed: {}", outcome.build_id,
                    outcome.error.empty() ? "the builder gave no reason" : outcome.error));
  }
  if (o.common.json) {
    console.Result(nlohmann::json{{"build_id", outcome.build_id},
                                  {"status", outcome.status},
                                  {"image", outcome.image},
                                  {"error", outcome.error}}
                       .dump());
  }
  if (st.ok() && outcome.status == "SUCCEEDED") return 0;
  return Interrupted() ? kInterruptedExit : 1;
}

}  // namespace slipway::cli
