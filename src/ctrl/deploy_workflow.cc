#include "ctrl/deploy_workflow.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/duration.h"
#include "ctrl/openapi_scrape.h"
#include "ctrl/routing.h"
#include "net/connect.h"
#include "slipway/krane/v1/deployment.pb.h"

namespace slipway::ctrl {
namespace {

namespace kv1 = slipway::krane::v1;
using Json = nlohmann::json;

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

constexpr std::string_view kKraneService = "slipway.krane.v1.DeploymentService";
// How long the route step waits for every gateway to load a route change before READY.
constexpr std::chrono::milliseconds kRoutePropagationTimeout{3000};

// Removing a failed deployment's instances is worth minutes of patience with a krane that is
// briefly away: 10 attempts, backing off to 30 s (about 3 minutes in all).
const workflow::RetryPolicy kCleanupRetries{10, std::chrono::milliseconds(500),
                                            std::chrono::seconds(30)};

std::string InstanceStatusName(kv1::InstanceStatus status) {
  switch (status) {
    case kv1::INSTANCE_STATUS_PENDING:
      return "PENDING";
    case kv1::INSTANCE_STATUS_RUNNING:
      return "RUNNING";
    case kv1::INSTANCE_STATUS_TERMINATING:
      return "TERMINATING";
    case kv1::INSTANCE_STATUS_FAILED:
      return "FAILED";
    default:
      return "PENDING";
  }
}

std::vector<InstanceRow> InstanceRows(const kv1::GetDeploymentResponse& resp) {
  std::vector<InstanceRow> rows;
  for (const auto& in : resp.instances()) {
    rows.push_back({in.id(), in.address(), InstanceStatusName(in.status()), in.reason()});
  }
  return rows;
}

// The wait step's journaled output: the instances as they were when all were RUNNING, so
// the later steps (openapi) see the same addresses on replay.
std::string InstancesJson(const std::vector<InstanceRow>& rows) {
  Json out = Json::array();
  for (const auto& r : rows)
    out.push_back({{"id", r.instance_id}, {"address", r.address}, {"status", r.status}});
  return out.dump();
}

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

// Why the instances are not ready at the deadline, naming each one.
std::string NotReadyMessage(const std::vector<InstanceRow>& last, int replicas,
                            std::chrono::milliseconds deadline, const std::string& last_error) {
  std::string names;
  for (const auto& r : last) {
    if (r.status == "RUNNING") continue;
    names += fmt::format("{}{} ({}{}{})", names.empty() ? "" : ", ", r.instance_id, r.status,
                         r.reason.empty() ? "" : ": ", r.reason);
  }
  const int missing = replicas - static_cast<int>(last.size());
  if (missing > 0) {
    names +=
        fmt::format("{}{} instance(s) krane never reported", names.empty() ? "" : ", ", missing);
  }
  if (names.empty()) names = "no instance";
  std::string msg = fmt::format(
      "the instances did not all become ready within {}: {} never became ready; make sure the "
      "app listens on the port in $PORT (and answers its health check path) soon after it "
      "starts",
      FormatDuration(deadline), names);
  if (!last_error.empty()) msg += fmt::format(" (last error: {})", last_error);
  return msg;
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
    }

    SLIPWAY_RETURN_IF_ERROR(Phase("DEPLOYING"));
    auto scheduled = DeploymentStep("schedule", [&] { return Schedule(image); });
    if (!scheduled.ok()) return Finish(scheduled.status());

    auto deadline = ctx_.Deadline("wait", deps_.wait_deadline);
    if (!deadline.ok()) {
      if (deadline.status().code() != Code::kCanceled) failed_step_ = "wait";
      return Finish(deadline.status());
    }
    // Failures inside the wait are judged by WaitForInstances itself: no retries on top.
    auto instances = DeploymentStep(
        "wait", [&] { return WaitForInstances(*deadline); }, workflow::RetryPolicy{1});
    if (!instances.ok()) return Finish(instances.status());

    auto openapi = DeploymentStep("openapi", [&] { return ScrapeSpec(*instances); });
    if (!openapi.ok()) return Finish(openapi.status());

    SLIPWAY_RETURN_IF_ERROR(Phase("NETWORK"));
    auto routed = DeploymentStep("route", [&] { return Route(); });
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
    auto result = ctx_.Step(name, body, policy);
    if (!result.ok() && result.status().code() == Code::kCanceled) return result;  // resumes later
    (void)deps_.store->FinishStep(id_, name, result.status());
    if (!result.ok()) failed_step_ = name;
    return result;
  }

  template <typename Request>
  void SetRef(Request& req) const {
    req.set_namespace_(deployment_.workspace_id);
    req.set_deployment_id(id_);
  }

  // krane's CreateDeployment with the deployment's resources. Idempotent on krane's side, so a
  // replay after a crash between the call and its journal entry creates nothing twice.
  Result<std::string> Schedule(const std::string& image) {
    if (deps_.krane == nullptr || deps_.partition == nullptr) {
      return Status::FailedPrecondition(
          "this control plane has no krane to run instances on (start it with KRANE_URL, "
          "KRANE_TOKEN and PARTITION_DATABASE_URL, or use `slipway dev`)");
    }
    kv1::CreateDeploymentRequest req;
    SetRef(req);
    req.set_image(image);
    req.set_replicas(static_cast<int32_t>(Replicas()));
    req.set_cpu_millicores(static_cast<int32_t>(deployment_.cpu_millicores));
    req.set_memory_mib(static_cast<int32_t>(deployment_.memory_mib));
    req.set_port(static_cast<int32_t>(deployment_.port));
    req.set_health_check_path(deployment_.health_check_path);
    for (const auto& [k, v] : deployment_.env) (*req.mutable_env())[k] = v;
    auto created = deps_.krane->Call<kv1::CreateDeploymentResponse>(
        net::ConnectProcedure(kKraneService, "CreateDeployment"), req);
    if (!created.ok()) return created.status().WithContext("krane refused to create the instances");
    return fmt::format("{} instance(s) created on krane", created->instances_size());
  }

  int64_t Replicas() const { return deployment_.replicas > 0 ? deployment_.replicas : 1; }

  // Polls krane every wait_interval until every replica is RUNNING (done), one is FAILED (fails
  // at once with krane's reason: exit code and log tail) or the journaled deadline passes (fails
  // naming the instances that are not ready). Each answer is mirrored into the partition
  // database. A krane (or partition database) that is briefly unreachable is tried again until
  // the deadline.
  Result<std::string> WaitForInstances(std::chrono::system_clock::time_point deadline) {
    const int replicas = static_cast<int>(Replicas());
    std::vector<InstanceRow> last;
    std::string last_error;
    for (;;) {
      kv1::GetDeploymentRequest req;
      SetRef(req);
      auto got = deps_.krane->Call<kv1::GetDeploymentResponse>(
          net::ConnectProcedure(kKraneService, "GetDeployment"), req);
      if (got.ok()) {
        last = InstanceRows(*got);
        last_error.clear();
        // The gateway finds instances through these rows: a write that fails is tried again
        // with the next answer, and the wait is done only once they are written.
        Status mirrored = deps_.partition->UpsertInstances(id_, last);
        if (!mirrored.ok()) {
          last_error = mirrored.WithContext("recording the instances").message();
          spdlog::warn("deployment {}: {}", id_, last_error);
        }
        int running = 0;
        for (const auto& in : last) {
          if (in.status == "FAILED") {
            return Status::FailedPrecondition(
                fmt::format("instance {} failed: {}", in.instance_id, in.reason));
          }
          if (in.status == "RUNNING") ++running;
        }
        if (running >= replicas && mirrored.ok()) return InstancesJson(last);
      } else if (got.status().code() == Code::kNotFound || workflow::IsTransient(got.status())) {
        last_error = got.status().message();
      } else {
        return workflow::Terminal(got.status().WithContext("asking krane about the instances"));
      }
      const auto now = ctx_.clock().Now();
      if (now >= deadline) {
        return Status::FailedPrecondition(
            NotReadyMessage(last, replicas, deps_.wait_deadline, last_error));
      }
      // The engine's timer: returns kCanceled at once when the engine stops, so a long wait
      // never holds up a shutdown; the run resumes this step with the same deadline.
      SLIPWAY_RETURN_IF_ERROR(ctx_.SleepUntil(std::min(now + deps_.wait_interval, deadline)));
    }
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

  // Domains in the main database, then every host's gateway route in one partition transaction
  // (environment and branch hosts move here from the previous deployment atomically), then the
  // hostnames on the deployment. Every part is an upsert, so a replay repeats it harmlessly.
  Result<std::string> Route() {
    auto hosts = DeploymentHostnames({deployment_.project_name, deployment_.environment,
                                      deployment_.branch, id_, deps_.apex_domain});
    std::vector<DomainClaim> claims;
    std::vector<std::string> names;
    for (const auto& h : hosts) {
      claims.push_back({h.hostname, std::string(HostKindName(h.kind))});
      names.push_back(h.hostname);
    }
    SLIPWAY_RETURN_IF_ERROR(deps_.store->ClaimDomains(deployment_.project_id, id_, claims));
    SLIPWAY_RETURN_IF_ERROR(deps_.partition->RouteHosts(id_, names));
    // READY promises the URLs answer from this deployment: wait for the gateways to load the
    // new routes (they reload every fraction of a second). A gateway that lags is logged, not
    // fatal: the route is committed and reaches it on its next load.
    const int64_t routed_at = deps_.partition->NowMs();
    auto behind = deps_.partition->WaitForGateways(routed_at, kRoutePropagationTimeout);
    if (!behind.ok()) {
      spdlog::warn("deployment {}: cannot tell whether the gateways have its routes: {}", id_,
                   behind.status().message());
    } else if (!behind->empty()) {
      spdlog::warn("deployment {}: {} gateway(s) have not loaded its routes within {} ms ({})",
                   id_, behind->size(), kRoutePropagationTimeout.count(), fmt::join(*behind, ", "));
    }
    SLIPWAY_RETURN_IF_ERROR(deps_.store->SetDeploymentHostnames(id_, names));
    std::string joined;
    for (const auto& n : names) joined += (joined.empty() ? "" : " ") + n;
    return joined;
  }

  // Removes whatever the deployment has running: krane's instances and the partition rows.
  // Journaled, so a ctrl that dies half-way finishes it on restart before marking FAILED.
  Status CleanUp() {
    if (deps_.krane == nullptr || deps_.partition == nullptr) return Status::Ok();
    auto done = ctx_.Step(
        "cleanup",
        [&]() -> Result<std::string> {
          kv1::DeleteDeploymentRequest req;
          SetRef(req);
          auto deleted = deps_.krane->Call<kv1::DeleteDeploymentResponse>(
              net::ConnectProcedure(kKraneService, "DeleteDeployment"), req);
          if (!deleted.ok() && deleted.status().code() != Code::kNotFound) {
            return deleted.status().WithContext("removing the instances from krane");
          }
          SLIPWAY_RETURN_IF_ERROR(deps_.partition->RemoveDeployment(id_));
          return fmt::format("{} instance(s) removed", deleted.ok() ? deleted->removed() : 0);
        },
        kCleanupRetries);
    return done.status();
  }

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
