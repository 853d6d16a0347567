#include "ctrl/deploy_workflow.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/duration.h"
#include "ctrl/ctrl_metrics.h"
#include "ctrl/deployment_ops.h"
#include "ctrl/openapi_check.h"
#include "ctrl/openapi_scrape.h"
#include "ctrl/routing.h"
#include "net/connect.h"

namespace slipway::ctrl {
namespace {

using Json = nlohmann::json;

// Collects a build's log lines and writes them to the database in batches: at most every
// 200 ms and at most 200 lines per write, so a chatty build is cheap and a quiet one still
// shows its lines within a fraction of a second. Close() writes the rest.
// The store holds the log to max_bytes (Store::AppendBuildLog), wherever the lines come from.
class BuildLogWriter {
 public:
  BuildLogWriter(Store& store, std::string build_id, uint64_t max_bytes)
      : store_(store),
        build_id_(std::move(build_id)),
        max_bytes_(max_bytes),
        flusher_([this] { FlushLoop(); }) {}
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
        Status st = store_.AppendBuildLog(build_id_, batch, max_bytes_);
        if (!st.ok()) spdlog::warn("build {}: {} log lines lost: {}", build_id_, batch.size(), st.message());
      }
      lock.lock();
      if (done && pending_.empty()) return;
    }
  }

  Store& store_;
  std::string build_id_;
  uint64_t max_bytes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> pending_;
  bool closed_ = false;
  std::thread flusher_;
};

// What a backend watches to stop a build: set when ctrl is stopping, or when the build has run
// longer than the build timeout (then expired() says so).
class BuildCancel {
 public:
  BuildCancel(const std::atomic<bool>* stopping, std::chrono::milliseconds timeout)
      : stopping_(stopping), timeout_(timeout), watcher_([this] { Watch(); }) {}
  ~BuildCancel() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    watcher_.join();
  }
  const std::atomic<bool>* flag() const { return &cancel_; }
  bool expired() const { return expired_.load(); }

 private:
  void Watch() {
    const auto give_up = std::chrono::steady_clock::now() + timeout_;
    std::unique_lock lock(mu_);
    while (!done_) {
      if (stopping_ != nullptr && stopping_->load()) {
        cancel_ = true;
        return;
      }
      if (timeout_.count() > 0 && std::chrono::steady_clock::now() >= give_up) {
        expired_ = true;
        cancel_ = true;
        return;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(100));
    }
  }

  const std::atomic<bool>* stopping_;
  std::chrono::milliseconds timeout_;
  std::atomic<bool> cancel_{false};
  std::atomic<bool> expired_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread watcher_;
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
  req.project_id = b.project_id;
  // The builder fetches the context itself; the URL outlives a slow queue ahead of it.
  req.context_url = deps.s3->PresignGet(deps.bucket, b.context_key, std::chrono::hours(1),
                                        build::kContextContentType);
  req.dockerfile = b.dockerfile;
  req.build_args = b.build_args;
  req.platform = b.platform;
  req.target = b.target;
  req.no_cache = b.no_cache;
  req.image_name = ImageName(b.project_name, tag);

  BuildLogWriter log(*deps.store, build_id, deps.max_build_log_bytes);
  auto started = std::chrono::steady_clock::now();
  auto count_build = [&](std::string_view outcome) {
    if (deps.metrics == nullptr) return;
    deps.metrics->BuildFinished(
        deps.builder->name(), outcome,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  };
  // The same inputs built before by this backend, and its image still there: no build.
  if (!b.no_cache) {
    auto same = deps.store->ReusableBuild(b, std::string(deps.builder->name()));
    if (same.ok() && *same && deps.builder->ImageExists((*same)->image)) {
      log.Sink()(fmt::format("unchanged: the source and build settings are those of build {}; "
                             "reusing its image {} (deploy with --no-cache to build again)",
                             (*same)->id, (*same)->image));
      log.Close();
      SLIPWAY_RETURN_IF_ERROR(deps.store->SetBuildBackend(build_id, std::string(deps.builder->name())));
      SLIPWAY_RETURN_IF_ERROR(deps.store->FinishBuild(build_id, (*same)->image, Status::Ok()));
      count_build("reused");
      return (*same)->image;
    }
  }
  BuildCancel cancel(deps.stopping, deps.build_timeout);
  auto result = deps.builder->Build(req, log.Sink(), cancel.flag());
  if (!result.ok() && cancel.expired()) {
    // Terminal: the same build would only run out of time again.
    result = Status::FailedPrecondition(fmt::format(
        "the build was still going after {}, this control plane's build timeout "
        "(--build-timeout), and was stopped: make it quicker (a smaller context, steps that "
        "cache well) or ask the operator to raise the timeout",
        FormatDuration(deps.build_timeout)));
    log.Sink()(std::string("[slipway] ") + result.status().message());
  }
  log.Close();
  if (!result.ok()) {
    // Transient failures are retried; a build canceled because ctrl is stopping runs again
    // when the deployment resumes. Neither finishes the build record.
    if (workflow::IsTransient(result.status()) || result.status().code() == Code::kCanceled) {
      count_build(result.status().code() == Code::kCanceled ? "canceled" : "retried");
      return result.status();
    }
    (void)deps.store->FinishBuild(build_id, "", result.status());
    count_build("failed");
    return workflow::Terminal(result.status());
  }
  count_build("succeeded");
  SLIPWAY_RETURN_IF_ERROR(deps.store->SetBuildBackend(build_id, std::string(deps.builder->name())));
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

// Removing a failed deployment's instances is worth minutes of patience with a krane that is
// briefly away: 10 attempts, backing off to 30 s (about 3 minutes in all).
const workflow::RetryPolicy kCleanupRetries{10, std::chrono::milliseconds(500),
                                            std::chrono::seconds(30)};

// The address of the first RUNNING instance in the wait step's output; empty if none.
std::string FirstRunningAddress(const std::string& instances_json) {
  Json j = Json::parse(instances_json, nullptr, false);
  if (!j.is_array()) return "";
  for (const auto& in : j) {
    if (in.value("status", "") == "RUNNING" && !in.value("address", "").empty()) {
      return in.value("address", "");
    }
  }
  return "";
}

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
      // The image the instances run, as for a built one (rollbacks start it again from here).
      SLIPWAY_RETURN_IF_ERROR(deps_.store->SetDeploymentImage(id_, image, ""));
    }

    SLIPWAY_RETURN_IF_ERROR(Phase("DEPLOYING"));
    auto scheduled = DeploymentStep("schedule", [&] { return Ops().Schedule(image); });
    if (!scheduled.ok()) return Finish(scheduled.status());

    auto deadline = ctx_.Deadline("wait", deps_.wait_deadline);
    if (!deadline.ok()) {
      if (deadline.status().code() != Code::kCanceled) failed_step_ = "wait";
      return Finish(deadline.status());
    }
    // Failures inside the wait are judged by WaitForInstances itself: no retries on top.
    auto instances = DeploymentStep(
        "wait", [&] { return Ops().WaitForInstances(*deadline); }, workflow::RetryPolicy{1});
    if (!instances.ok()) return Finish(instances.status());

    auto openapi = DeploymentStep("openapi", [&] { return ScrapeSpec(*instances); });
    if (!openapi.ok()) return Finish(openapi.status());

    // Journaled, so a resumed run routes the way the first one decided.
    auto contract = ctx_.Step("contract", [&] { return CheckContract(); });
    if (!contract.ok()) return Finish(contract.status());

    SLIPWAY_RETURN_IF_ERROR(Phase("NETWORK"));
    auto routed = DeploymentStep("route", [&] { return Route(*contract == kHeldBack); });
    if (!routed.ok()) return Finish(routed.status());
    return Finish(Status::Ok());
  }

 private:
  Status Phase(const std::string& status) { return deps_.store->SetDeploymentStatus(id_, status); }

  // One deployment step: journaled by the engine, mirrored in deployment_steps.
  Result<std::string> DeploymentStep(const std::string& name,
                                     const std::function<Result<std::string>()>& body,
                                     const workflow::RetryPolicy& policy = {}) {
    (void)deps_.store->StartStep(id_, name);
    bool ran = false;  // false when the journal already held the step's result
    auto started = std::chrono::steady_clock::now();
    auto result = ctx_.Step(
        name,
        [&] {
          ran = true;
          return body();
        },
        policy);
    if (ran && deps_.metrics != nullptr) {
      deps_.metrics->StepFinished(
          name, result.status(),
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }
    if (!result.ok() && result.status().code() == Code::kCanceled) return result;  // resumes later
    (void)deps_.store->FinishStep(id_, name, result.status());
    if (!result.ok()) failed_step_ = name;
    return result;
  }

  // Optional by design: whatever happens, the step succeeds and its output says what it found.
  Result<std::string> ScrapeSpec(const std::string& instances_json) {
    const std::string address = FirstRunningAddress(instances_json);
    if (address.empty()) return std::string("no running instance to ask for an OpenAPI spec");
    OpenApiScrape scraped = ScrapeOpenApi(address);
    if (scraped.spec) {
      OpenApiSpecRecord rec{id_, scraped.spec->path, scraped.spec->content_type,
                            std::move(scraped.spec->text), 0};
      SLIPWAY_RETURN_IF_ERROR(deps_.store->SaveOpenApiSpec(rec));
    }
    spdlog::info("deployment {}: {}", id_, scraped.note);
    return scraped.note;
  }

  // The OpenAPI contract check against the environment's live deployment, before the route
  // step moves its hosts: kHeldBack when fail_on_breaking keeps them where they are.
  static constexpr std::string_view kHeldBack = "held back";
  Result<std::string> CheckContract() {
    SLIPWAY_ASSIGN_OR_RETURN(OpenApiCheckRecord check, CheckOpenApiContract(*deps_.store, deployment_));
    spdlog::info("deployment {}: {}", id_, check.note);
    return std::string(check.held_back ? kHeldBack : "routed");
  }

  // The deployment's hosts (environment, branch, its own; only its own when held back by
  // breaking API changes), then the hostnames on the record.
  Result<std::string> Route(bool held_back) {
    auto hosts = DeploymentHostnames({deployment_.project_name, deployment_.environment,
                                      deployment_.branch, id_, deps_.apex_domain});
    if (held_back) {
      std::erase_if(hosts, [](const DeploymentHost& h) { return h.kind != HostKind::kDeployment; });
    }
    SLIPWAY_ASSIGN_OR_RETURN(std::string joined, Ops().MoveHosts(hosts, deployment_.environment));
    std::vector<std::string> names;
    for (const auto& h : hosts) names.push_back(h.hostname);
    SLIPWAY_RETURN_IF_ERROR(deps_.store->SetDeploymentHostnames(id_, names));
    return joined;
  }

  // Removes whatever the deployment has running: krane's instances and the partition rows.
  // Journaled, so a ctrl that dies half-way finishes it on restart before marking FAILED.
  Status CleanUp() {
    if (!Ops().RequireKrane().ok()) return Status::Ok();
    return ctx_.Step("cleanup", [&] { return Ops().RemoveInstances(); }, kCleanupRetries).status();
  }

  DeploymentOps Ops() { return DeploymentOps(deps_, ctx_, deployment_); }

  // Marks the deployment READY or FAILED. A canceled step (engine stopping) leaves it as is:
  // the run resumes on restart. A failure at schedule or later first removes the instances.
  Status Finish(const Status& result) {
    if (result.code() == Code::kCanceled) return result;
    if (result.ok()) return deps_.store->SetDeploymentStatus(id_, "READY");
    std::string message = result.message();
    if (failed_step_ != "build") {
      Status cleaned = CleanUp();
      if (cleaned.code() == Code::kCanceled) return cleaned;
      if (!cleaned.ok()) {
        message += fmt::format(" (and its instances could not be removed: {})", cleaned.message());
      }
    }
    SLIPWAY_RETURN_IF_ERROR(deps_.store->FailDeployment(id_, failed_step_, message));
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
