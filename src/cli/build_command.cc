// `slipway build [DIR]`: package, upload, CreateBuild, follow the log, print the image.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/context_upload.h"
#include "cli/deployment_view.h"
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

// Polls GetBuild until the build is over, printing log lines as they arrive.
Status FollowBuild(const CtrlApi& ctrl, const CommonOptions& common, Console& console,
                   BuildOutcome* out) {
  pb::GetBuildRequest req;
  req.set_build_id(out->build_id);
  auto started = std::chrono::steady_clock::now();
  while (true) {
    pb::GetBuildResponse resp;
    SLIPWAY_RETURN_IF_ERROR(ctrl.CallPatiently("BuildService", "GetBuild", req, &resp,
                                               kControlPlanePatience, ReportOutage(console)));
    for (const auto& line : resp.log()) {
      PrintLogLine(console, line.text(), "");
      req.set_log_after(line.seq());
    }
    out->status = BuildStatusName(resp.status());
    if (resp.status() == pb::BUILD_STATUS_SUCCEEDED || resp.status() == pb::BUILD_STATUS_FAILED) {
      out->image = resp.image();
      out->error = resp.error();
      return Status::Ok();
    }
    SLIPWAY_RETURN_IF_ERROR(WaitForNextPoll(console, common.poll_interval, [&] {
      return fmt::format("Building ({}) {}", out->status == "QUEUED" ? "queued" : "running",
                         FormatElapsed(std::chrono::steady_clock::now() - started));
    }));
  }
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
  for (const auto& [k, v] : settings.build_args) (*req.mutable_build_args())[k] = v;
  pb::CreateBuildResponse resp;
  SLIPWAY_RETURN_IF_ERROR(ctrl->Call("BuildService", "CreateBuild", req, &resp));
  out->build_id = resp.build_id();
  out->status = "QUEUED";
  console.Line(fmt::format("Build {} started (project {})", out->build_id, settings.project));
  return FollowBuild(*ctrl, o.common, console, out);
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
