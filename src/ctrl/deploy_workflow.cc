#include "ctrl/deploy_workflow.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "net/connect.h"

namespace slipway::ctrl {
namespace {

// Collects a build's log lines and writes them to the database in batches: at most every
// 200 ms and at most 200 lines per write, so a chatty build is cheap and a quiet one still
// shows its lines within a fraction of a second. Close() writes the rest.
class BuildLogWriter {
 public:
  BuildLogWriter(Store& store, std::string build_id)
      : store_(store), build_id_(std::move(build_id)), flusher_([this] { FlushLoop(); }) {}
  ~BuildLogWriter() { Close(); }

  build::BuildLogSink Sink() {
    return [this](std::string_view line) {
      std::lock_guard lock(mu_);
      pending_.emplace_back(line);
      if (pending_.size() >= 200) cv_.notify_one();
    };
  }

  void Close() {
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = true;
    }
    cv_.notify_one();
    flusher_.join();
  }

 private:
  void FlushLoop() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait_for(lock, std::chrono::milliseconds(200),
                   [this] { return closed_ || pending_.size() >= 200; });
      std::vector<std::string> batch;
      batch.swap(pending_);
      bool done = closed_;
      lock.unlock();
      if (!batch.empty()) {
        Status st = store_.AppendBuildLog(build_id_, batch);
        if (!st.ok()) spdlog::warn("build {}: {} log lines lost: {}", build_id_, batch.size(), st.message());
      }
      lock.lock();
      if (done && pending_.empty()) return;
    }
  }

  Store& store_;
  std::string build_id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> pending_;
  bool closed_ = false;
  std::thread flusher_;
};

// Builds one build record through the backend: the body of the "build" workflow and of the
// deploy workflow's build step. Returns the image. A builder that answers and refuses (bad
// Dockerfile, failing RUN) is a terminal failure; an unreachable builder is transient.
Result<std::string> RunBuild(const WorkflowDeps& deps, const std::string& build_id,
                             const std::string& tag) {
  SLIPWAY_ASSIGN_OR_RETURN(BuildRecord b, deps.store->GetBuildById(build_id));
  auto head = deps.s3->HeadObject(deps.bucket, b.context_key);
  if (!head.ok()) {
    Status st = head.status().code() == Code::kNotFound
                    ? Status::FailedPrecondition(fmt::format(
                          "the build context {} is not in the object store: upload it with the "
                          "URL from GenerateUploadURL before starting the build",
                          b.context_key))
                    : head.status().WithContext("checking the build context");
    if (!workflow::IsTransient(st)) (void)deps.store->FinishBuild(build_id, "", st);
    return st;
  }
  SLIPWAY_RETURN_IF_ERROR(deps.store->SetBuildRunning(build_id));

  build::BuildRequest req;
  req.build_id = build_id;
  req.project = b.project_name;
  // The builder fetches the context itself; the URL outlives a slow queue ahead of it.
  req.context_url = deps.s3->PresignGet(deps.bucket, b.context_key, std::chrono::hours(1),
                                        build::kContextContentType);
  req.dockerfile = b.dockerfile;
  req.build_args = b.build_args;
  req.platform = b.platform;
  req.image_name = ImageName(b.project_name, tag);

  BuildLogWriter log(*deps.store, build_id);
  auto result = deps.builder->Build(req, log.Sink());
  log.Close();
  if (!result.ok()) {
    if (workflow::IsTransient(result.status())) return result.status();
    (void)deps.store->FinishBuild(build_id, "", result.status());
    return workflow::Terminal(result.status());
  }
  SLIPWAY_RETURN_IF_ERROR(deps.store->FinishBuild(build_id, result->image, Status::Ok()));
  return result->image;
}

// A build step that gave up (transient failures retried until the policy ran out, e.g. dockerd
// unreachable) must not leave its build "running" forever: record the last failure, unless the
// build already finished (RunBuild records terminal failures itself) or the engine is stopping.
void RecordBuildGaveUp(const WorkflowDeps& deps, const std::string& build_id, const Status& st) {
  if (st.ok() || st.code() == Code::kCanceled) return;
  auto b = deps.store->GetBuildById(build_id);
  if (b.ok() && (b->status == "succeeded" || b->status == "failed")) return;
  (void)deps.store->FinishBuild(build_id, "", st);
}

std::string DeploymentIdFromInput(const std::string& input) { return input; }

class DeployRun {
 public:
  DeployRun(const WorkflowDeps& deps, workflow::RunContext& ctx)
      : deps_(deps), ctx_(ctx), id_(DeploymentIdFromInput(ctx.input())) {}

  Status Run() {
    SLIPWAY_ASSIGN_OR_RETURN(deployment_, deps_.store->GetDeploymentById(id_));
    if (deployment_.status == "READY" || deployment_.status == "FAILED") return Status::Ok();

    std::string image = deployment_.source_image;
    if (image.empty()) {
      SLIPWAY_RETURN_IF_ERROR(Phase("BUILDING"));
      auto built = DeploymentStep("build", [&] { return RunBuild(deps_, deployment_.build_id, id_); });
      RecordBuildGaveUp(deps_, deployment_.build_id, built.status());
      if (!built.ok()) return Finish(built.status());
      image = *built;
      SLIPWAY_RETURN_IF_ERROR(deps_.store->SetDeploymentImage(id_, image, deployment_.build_id));
    } else {
      auto skipped = DeploymentStep("build", [&]() -> Result<std::string> { return image; });
      if (!skipped.ok()) return Finish(skipped.status());
    }

    SLIPWAY_RETURN_IF_ERROR(Phase("DEPLOYING"));
    auto scheduled = DeploymentStep("schedule", [&]() -> Result<std::string> {
      if (deps_.krane == nullptr) {
        return Status::FailedPrecondition(
            "this control plane has no krane to run instances on (start it with KRANE_URL and "
            "KRANE_TOKEN, or use `slipway dev`)");
      }
      return Status::Unimplemented("scheduling on krane arrives with the krane issue");
    });
    if (!scheduled.ok()) return Finish(scheduled.status());
    return Finish(Status::Ok());
  }

 private:
  Status Phase(const std::string& status) { return deps_.store->SetDeploymentStatus(id_, status); }

  // One deployment step: journaled by the engine, mirrored in deployment_steps.
  Result<std::string> DeploymentStep(const std::string& name,
                                     const std::function<Result<std::string>()>& body) {
    (void)deps_.store->StartStep(id_, name);
    auto result = ctx_.Step(name, body);
    if (!result.ok() && result.status().code() == Code::kCanceled) return result;  // resumes later
    (void)deps_.store->FinishStep(id_, name, result.status());
    if (!result.ok()) failed_step_ = name;
    return result;
  }

  // Marks the deployment READY or FAILED. A canceled step (engine stopping) leaves it as is:
  // the run resumes on restart.
  Status Finish(const Status& result) {
    if (result.code() == Code::kCanceled) return result;
    if (result.ok()) return deps_.store->SetDeploymentStatus(id_, "READY");
    SLIPWAY_RETURN_IF_ERROR(deps_.store->FailDeployment(id_, failed_step_, result.message()));
    return result;
  }

  const WorkflowDeps& deps_;
  workflow::RunContext& ctx_;
  std::string id_;
  DeploymentRecord deployment_;
  std::string failed_step_;
};

}  // namespace

const std::vector<std::string>& DeploymentStepNames() {
  static const std::vector<std::string> kSteps = {"build", "schedule", "wait", "openapi", "route"};
  return kSteps;
}

std::string ImageName(const std::string& project_name, const std::string& tag) {
  return project_name + ":" + tag;
}

void RegisterWorkflows(workflow::WorkflowEngine& engine, const WorkflowDeps& deps) {
  engine.Register(std::string(kBuildWorkflow), [&deps](workflow::RunContext& ctx) -> Status {
    const std::string& build_id = ctx.input();
    auto image = ctx.Step("build", [&] { return RunBuild(deps, build_id, build_id); });
    RecordBuildGaveUp(deps, build_id, image.status());
    if (!image.ok()) return image.status();
    ctx.SetOutput(*image);
    return Status::Ok();
  });
  engine.Register(std::string(kDeployWorkflow), [&deps](workflow::RunContext& ctx) -> Status {
    return DeployRun(deps, ctx).Run();
  });
}

}  // namespace slipway::ctrl
