#include "ctrl/services.h"

#include <fmt/format.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "base/ids.h"
#include "ctrl/deploy_workflow.h"
#include "ctrl/lifecycle_workflow.h"
#include "ctrl/openapi_service.h"
#include "ctrl/env_service.h"
#include "ctrl/token_service.h"
#include "ctrl/routing.h"
#include "slipway/ctrl/v1/build.pb.h"
#include "slipway/ctrl/v1/ctrl.pb.h"
#include "slipway/ctrl/v1/deployment.pb.h"
#include "slipway/krane/v1/deployment.pb.h"
#include "net/connect.h"

namespace slipway::ctrl {
namespace {

namespace pb = slipway::ctrl::v1;
namespace kv1 = slipway::krane::v1;

constexpr std::string_view kBuildService = "slipway.ctrl.v1.BuildService";
constexpr std::string_view kDeploymentService = "slipway.ctrl.v1.DeploymentService";
constexpr std::string_view kCtrlService = "slipway.ctrl.v1.CtrlService";

bool IsLowerHex(const std::string& s, size_t len) {
  if (s.size() != len) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The context key a client names must be one of this project's: no reading other projects'
// (or other workspaces') sources through a crafted key. A well-formed key of another project is
// NotFound, as anything of another workspace is.
Status CheckContextKey(const std::string& key, const Project& project) {
  constexpr std::string_view kSuffix = ".tar.gz";
  auto well_formed = [&](size_t prefix_size) {
    return key.size() == prefix_size + 64 + kSuffix.size() &&
           key.compare(key.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0 &&
           IsLowerHex(key.substr(prefix_size, 64), 64);
  };
  const std::string prefix = "contexts/" + project.id + "/";
  if (key.rfind(prefix, 0) == 0 && well_formed(prefix.size())) return Status::Ok();
  const size_t slash = key.find('/', 9);
  if (key.rfind("contexts/", 0) == 0 && slash != std::string::npos && well_formed(slash + 1)) {
    return Status::NotFound(fmt::format(
        "no build context {} in this project (use the key GenerateUploadURL returned)", key));
  }
  return Status::InvalidArgument(fmt::format(
      "context key \"{}\" is not one of project {}'s (use the key GenerateUploadURL returned)",
      key, project.name));
}

Status ContextTooLarge(uint64_t size, uint64_t limit) {
  return Status::ResourceExhausted(fmt::format(
      "the build context is {} bytes, over this control plane's limit of {} bytes "
      "(--max-context-bytes): exclude large files with .dockerignore, or ask the operator to "
      "raise the limit",
      size, limit));
}

// A build needs its context in the store; refusing here, before any record exists, tells the
// client at once instead of through a build that fails later.
Status CheckContextUploaded(const ServiceDeps& deps, const std::string& key) {
  auto head = deps.s3->HeadObject(deps.bucket, key);
  if (head.ok()) {
    // An object put there some other way than through our presigned URL is held to the limit too.
    if (deps.max_context_bytes > 0 && head->size > deps.max_context_bytes) {
      return ContextTooLarge(head->size, deps.max_context_bytes);
    }
    return Status::Ok();
  }
  if (head.status().code() == Code::kNotFound) {
    return Status::FailedPrecondition(fmt::format(
        "the build context {} is not in the object store: upload it with the URL from "
        "GenerateUploadURL, then ask again",
        key));
  }
  return head.status().WithContext("the object store could not be reached");
}

Status CheckDockerfilePath(const std::string& path) {
  if (path.empty()) return Status::Ok();
  if (path[0] == '/' || path.find("..") != std::string::npos || path.find('\0') != std::string::npos) {
    return Status::InvalidArgument("dockerfile \"" + path +
                                   "\" must be a relative path inside the context");
  }
  return Status::Ok();
}

pb::BuildStatus BuildStatusToProto(const std::string& s) {
  if (s == "queued") return pb::BUILD_STATUS_QUEUED;
  if (s == "running") return pb::BUILD_STATUS_RUNNING;
  if (s == "succeeded") return pb::BUILD_STATUS_SUCCEEDED;
  if (s == "failed") return pb::BUILD_STATUS_FAILED;
  return pb::BUILD_STATUS_UNSPECIFIED;
}

pb::DeploymentStatus DeploymentStatusToProto(const std::string& s) {
  if (s == "PENDING") return pb::DEPLOYMENT_STATUS_PENDING;
  if (s == "BUILDING") return pb::DEPLOYMENT_STATUS_BUILDING;
  if (s == "DEPLOYING") return pb::DEPLOYMENT_STATUS_DEPLOYING;
  if (s == "NETWORK") return pb::DEPLOYMENT_STATUS_NETWORK;
  if (s == "READY") return pb::DEPLOYMENT_STATUS_READY;
  if (s == "FAILED") return pb::DEPLOYMENT_STATUS_FAILED;
  if (s == "DELETED") return pb::DEPLOYMENT_STATUS_DELETED;
  return pb::DEPLOYMENT_STATUS_UNSPECIFIED;
}

pb::StepStatus StepStatusToProto(const std::string& s) {
  if (s == "pending") return pb::STEP_STATUS_PENDING;
  if (s == "running") return pb::STEP_STATUS_RUNNING;
  if (s == "succeeded") return pb::STEP_STATUS_SUCCEEDED;
  if (s == "failed") return pb::STEP_STATUS_FAILED;
  return pb::STEP_STATUS_UNSPECIFIED;
}

void DeploymentToProto(const DeploymentRecord& d, int gateway_public_port, pb::Deployment* out) {
  out->set_id(d.id);
  out->set_project(d.project_name);
  out->set_environment(d.environment);
  out->set_branch(d.branch);
  out->mutable_git()->set_commit_sha(d.git_commit_sha);
  out->mutable_git()->set_commit_message(d.git_commit_message);
  out->mutable_git()->set_author(d.git_commit_author);
  out->set_status(DeploymentStatusToProto(d.status));
  out->set_error(d.error);
  out->set_failed_step(d.failed_step);
  for (const auto& s : d.steps) {
    auto* step = out->add_steps();
    step->set_name(s.name);
    step->set_status(StepStatusToProto(s.status));
    step->set_started_at_ms(s.started_at_ms);
    step->set_finished_at_ms(s.finished_at_ms);
    step->set_error(s.error);
  }
  out->set_image(d.image);
  for (const auto& h : d.hostnames) {
    out->add_hostnames(h);
    out->add_urls(GatewayUrl(h, gateway_public_port));
  }
  out->set_has_openapi_spec(d.has_openapi_spec);
  for (const auto& e : d.live_environments) out->add_live_environments(e);
  out->set_stopped_at_ms(d.stopped_at_ms);
  out->set_build_id(d.build_id);
  out->set_created_at_ms(d.created_at_ms);
  out->set_updated_at_ms(d.updated_at_ms);
}

Status AddOpenApiCheck(Store& store, const std::string& deployment_id, pb::Deployment* out) {
  SLIPWAY_ASSIGN_OR_RETURN(OpenApiCheckRecord check, store.GetOpenApiCheck(deployment_id));
  out->set_openapi_base_deployment_id(check.base_deployment_id);
  out->set_openapi_has_breaking_changes(check.has_breaking);
  out->set_held_back_by_breaking_changes(check.held_back);
  out->set_openapi_check_note(check.note);
  return Status::Ok();
}

Status CheckBuildCap(const ServiceDeps& d, const std::string& workspace_id) {
  if (d.max_concurrent_builds <= 0) return Status::Ok();
  SLIPWAY_ASSIGN_OR_RETURN(int64_t active, d.store->ActiveBuilds(workspace_id));
  if (active >= d.max_concurrent_builds) return TooManyBuilds(active, d.max_concurrent_builds);
  return Status::Ok();
}

// Records a new deployment (and, when it has a context, its build with the platform, target and
// cache setting given in `build`) and starts its durable deploy run.
Status StartDeployment(const ServiceDeps& d, const DeploymentRecord& dep, BuildRecord build,
                       bool fail_on_breaking = false) {
  // Refused before any record exists when the workspace is plainly at its cap; the insert below
  // checks again atomically, for two requests racing for the last place.
  if (!dep.build_id.empty()) SLIPWAY_RETURN_IF_ERROR(CheckBuildCap(d, dep.workspace_id));
  SLIPWAY_RETURN_IF_ERROR(d.store->InsertDeployment(dep, DeploymentStepNames()));
  if (fail_on_breaking) {
    OpenApiCheckRecord check;
    check.deployment_id = dep.id;
    check.fail_on_breaking = true;
    SLIPWAY_RETURN_IF_ERROR(d.store->SaveOpenApiCheck(check));
  }
  if (!dep.build_id.empty()) {
    build.id = dep.build_id;
    build.project_id = dep.project_id;
    build.deployment_id = dep.id;
    build.context_key = dep.context_key;
    build.dockerfile = dep.dockerfile;
    build.build_args = dep.build_args;
    Status inserted = d.store->InsertBuild(build, d.max_concurrent_builds);
    if (!inserted.ok()) {
      (void)d.store->FailDeployment(dep.id, "build", inserted.message());
      return inserted;
    }
    SLIPWAY_RETURN_IF_ERROR(d.store->SetDeploymentImage(dep.id, "", build.id));
  }
  return d.engine->Start(kDeployWorkflow, dep.project_id, dep.id).status();
}

// Waits for a run this request started, so the caller learns how it ended. A run still going at
// the timeout goes on (it is durable); the caller is told so.
Result<std::string> AwaitRun(const ServiceDeps& d, const std::string& run_id,
                             const std::string& what) {
  const auto give_up = std::chrono::steady_clock::now() + d.lifecycle_timeout;
  for (;;) {
    SLIPWAY_ASSIGN_OR_RETURN(workflow::RunRecord run, d.engine->GetRun(run_id));
    if (run.status == workflow::RunStatus::kSucceeded) return run.output;
    if (run.status == workflow::RunStatus::kFailed) return workflow::Terminal(run.error);
    if (std::chrono::steady_clock::now() >= give_up) {
      return Status::DeadlineExceeded(fmt::format(
          "{} is still going after {} s (run {}); it finishes on its own: see `slipway list`",
          what, std::chrono::duration_cast<std::chrono::seconds>(d.lifecycle_timeout).count(),
          run_id));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// A deployment the hosts of an environment may move to: READY, of this workspace.
Status CheckSwitchable(const DeploymentRecord& dep, const std::string& action) {
  if (dep.status == "READY") return Status::Ok();
  return Status::FailedPrecondition(fmt::format(
      "cannot {} deployment {}: it is {}, and only a READY deployment can serve an environment",
      action, dep.id, dep.status));
}

template <typename LogField>
Status AppendLog(Store& store, const std::string& build_id, int64_t after, LogField* out,
                 int limit = 1000) {
  if (build_id.empty()) return Status::Ok();
  SLIPWAY_ASSIGN_OR_RETURN(auto lines, store.ReadBuildLog(build_id, after, limit));
  for (const auto& l : lines) {
    auto* line = out->Add();
    line->set_seq(l.seq);
    line->set_time_ms(l.time_ms);
    line->set_text(l.text);
  }
  return Status::Ok();
}

// Wakes a watch stream when a change of the deployment or build it follows was committed
// (Store::SubscribeToChanges), so the stream re-reads only when there is something to send.
class ChangeWaiter {
 public:
  explicit ChangeWaiter(Store& store)
      : subscription_(store.SubscribeToChanges([this](std::string_view id) {
          std::lock_guard lock(mu_);
          if (id.empty() || ids_.count(std::string(id))) {
            changed_ = true;
            cv_.notify_all();
          }
        })) {}

  void Follow(const std::string& id) {
    std::lock_guard lock(mu_);
    ids_.insert(id);
  }

  // Returns once a change of a followed id was announced since the last return, the stream is
  // cancelled (checked every kCancelCheck), or kSafetyReread passed: a lost notice (a dropped
  // listening connection) delays a message, never loses it.
  void Wait(const net::ServerStream& stream) {
    constexpr auto kCancelCheck = std::chrono::milliseconds(250);
    constexpr auto kSafetyReread = std::chrono::seconds(5);
    const auto reread = std::chrono::steady_clock::now() + kSafetyReread;
    std::unique_lock lock(mu_);
    while (!changed_ && !stream.Cancelled() && std::chrono::steady_clock::now() < reread) {
      cv_.wait_for(lock, kCancelCheck);
    }
    changed_ = false;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> ids_;
  bool changed_ = false;
  std::unique_ptr<db::ChangeSubscription> subscription_;  // last: gone before the rest
};

// How a watch ends when nobody reads it any more.
Status WatchAbandoned(const net::CallContext& ctx, std::string_view what) {
  if (ctx.deadline_passed()) {
    return Status::DeadlineExceeded(fmt::format(
        "the watch of {} reached its deadline (Connect-Timeout-Ms); watch again to go on", what));
  }
  return Status::Unavailable(fmt::format(
      "the watch of {} ended: ctrl is stopping or the client left; watch again or poll", what));
}

constexpr int kWatchLogBatch = 1000;

// Follows one deployment: sends it at once, then again whenever what the client sees of it
// changed or new build log lines were committed, until it is READY, FAILED or DELETED.
Status WatchDeployment(const ServiceDeps& d, net::CallContext& ctx,
                       const pb::WatchDeploymentRequest& req,
                       net::StreamWriter<pb::WatchDeploymentResponse>& out) {
  SLIPWAY_ASSIGN_OR_RETURN(std::string ws, Authenticate(d, ctx, Access::kRead, "WatchDeployment"));
  ChangeWaiter changes(*d.store);  // before the first read: no change falls in between
  changes.Follow(req.deployment_id());
  int64_t log_after = req.log_after();
  std::string last_sent;
  for (;;) {
    SLIPWAY_ASSIGN_OR_RETURN(DeploymentRecord dep, d.store->GetDeployment(ws, req.deployment_id()));
    if (!dep.build_id.empty()) changes.Follow(dep.build_id);
    pb::WatchDeploymentResponse message;
    DeploymentToProto(dep, d.gateway_public_port, message.mutable_deployment());
    SLIPWAY_RETURN_IF_ERROR(AddOpenApiCheck(*d.store, dep.id, message.mutable_deployment()));
    SLIPWAY_RETURN_IF_ERROR(
        AppendLog(*d.store, dep.build_id, log_after, message.mutable_build_log(), kWatchLogBatch));
    const int lines = message.build_log_size();
    if (lines > 0) log_after = message.build_log(lines - 1).seq();
    std::string now = message.deployment().SerializeAsString();
    if (out.messages_sent() == 0 || lines > 0 || now != last_sent) {
      SLIPWAY_RETURN_IF_ERROR(out.Send(message));
      last_sent = std::move(now);
    }
    if (lines == kWatchLogBatch) continue;  // more lines are waiting
    if (dep.status == "READY" || dep.status == "FAILED" || dep.status == "DELETED") {
      return Status::Ok();
    }
    changes.Wait(out.stream());
    if (out.Cancelled()) return WatchAbandoned(ctx, "deployment " + dep.id);
  }
}

void BuildToProto(const BuildRecord& b, pb::GetBuildResponse* resp) {
  resp->set_build_id(b.id);
  resp->set_project(b.project_name);
  resp->set_status(BuildStatusToProto(b.status));
  resp->set_image(b.image);
  resp->set_error(b.error);
  resp->set_created_at_ms(b.created_at_ms);
  resp->set_finished_at_ms(b.finished_at_ms);
}

// WatchDeployment's twin for a standalone build.
Status WatchBuild(const ServiceDeps& d, net::CallContext& ctx, const pb::GetBuildRequest& req,
                  net::StreamWriter<pb::GetBuildResponse>& out) {
  SLIPWAY_ASSIGN_OR_RETURN(std::string ws, Authenticate(d, ctx, Access::kRead, "WatchBuild"));
  ChangeWaiter changes(*d.store);
  changes.Follow(req.build_id());
  int64_t log_after = req.log_after();
  std::string last_sent;
  for (;;) {
    SLIPWAY_ASSIGN_OR_RETURN(BuildRecord b, d.store->GetBuild(ws, req.build_id()));
    pb::GetBuildResponse message;
    BuildToProto(b, &message);
    SLIPWAY_RETURN_IF_ERROR(
        AppendLog(*d.store, b.id, log_after, message.mutable_log(), kWatchLogBatch));
    const int lines = message.log_size();
    if (lines > 0) log_after = message.log(lines - 1).seq();
    pb::GetBuildResponse without_log = message;
    without_log.clear_log();
    std::string now = without_log.SerializeAsString();
    if (out.messages_sent() == 0 || lines > 0 || now != last_sent) {
      SLIPWAY_RETURN_IF_ERROR(out.Send(message));
      last_sent = std::move(now);
    }
    if (lines == kWatchLogBatch) continue;
    if (b.status == "succeeded" || b.status == "failed") return Status::Ok();
    changes.Wait(out.stream());
    if (out.Cancelled()) return WatchAbandoned(ctx, "build " + b.id);
  }
}
}  // namespace

Result<std::string> Authenticate(const ServiceDeps& deps, net::CallContext& ctx, Access access,
                                 std::string_view method) {
  SLIPWAY_ASSIGN_OR_RETURN(Caller caller, deps.store->Authenticate(ctx.bearer_token()));
  if (access == Access::kChange && !caller.can_change()) {
    return Status::PermissionDenied(fmt::format(
        "the API token {} has the read scope: it can look but not change anything, and {} "
        "changes something; use a token with the deploy scope (`slipway token create --scope "
        "deploy`)",
        caller.token_id, method));
  }
  return caller.workspace_id;
}

Status ValidateProjectName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 40 && name.front() != '-' && name.back() != '-';
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) ok = false;
  }
  if (!ok) {
    return Status::InvalidArgument(fmt::format(
        "project name \"{}\" must be 1-40 characters of a-z, 0-9 and '-', not starting or ending "
        "with '-' (set `project` in slipway.toml or pass --project)",
        name));
  }
  return Status::Ok();
}

Status ValidateEnvironmentName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 20 && name.front() != '-' && name.back() != '-';
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) ok = false;
  }
  if (ok) return Status::Ok();
  return Status::InvalidArgument(fmt::format(
      "environment name \"{}\" must be 1-20 characters of a-z, 0-9 and '-', not starting or "
      "ending with '-'",
      name));
}

std::string ContextKey(const std::string& project_id, const std::string& sha256) {
  return fmt::format("contexts/{}/{}.tar.gz", project_id, sha256);
}

void RegisterCtrlServices(net::ConnectRouter& router, const ServiceDeps& deps) {
  const ServiceDeps* d = &deps;
  RegisterOpenApiService(router, deps);
  RegisterTokenService(router, deps);
  RegisterEnvService(router, deps);

  router.Unary<pb::LivenessRequest, pb::LivenessResponse>(
      net::ConnectProcedure(kCtrlService, "Liveness"),
      [](net::CallContext&, const pb::LivenessRequest&, pb::LivenessResponse* resp) {
        resp->set_status("ok");
        resp->set_version(SLIPWAY_VERSION);
        return Status::Ok();
      });

  router.Unary<pb::GenerateUploadURLRequest, pb::GenerateUploadURLResponse>(
      net::ConnectProcedure(kBuildService, "GenerateUploadURL"),
      [d](net::CallContext& ctx, const pb::GenerateUploadURLRequest& req,
          pb::GenerateUploadURLResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(
            std::string ws, Authenticate(*d, ctx, Access::kChange, "GenerateUploadURL"));
        SLIPWAY_RETURN_IF_ERROR(ValidateProjectName(req.project()));
        if (!IsLowerHex(req.sha256(), 64)) {
          return Status::InvalidArgument("sha256 must be the 64 lower-case hex digits of the "
                                         "archive's SHA-256");
        }
        if (req.size() <= 0) return Status::InvalidArgument("size must be the archive's byte count");
        if (static_cast<uint64_t>(req.size()) > d->max_context_bytes) {
          return ContextTooLarge(static_cast<uint64_t>(req.size()), d->max_context_bytes);
        }
        SLIPWAY_ASSIGN_OR_RETURN(Project project, d->store->EnsureProject(ws, req.project()));
        std::string key = ContextKey(project.id, req.sha256());
        resp->set_context_key(key);
        auto head = d->s3->HeadObject(d->bucket, key);
        if (head.ok() && head->size == static_cast<uint64_t>(req.size())) {
          resp->set_already_uploaded(true);
          return Status::Ok();
        }
        if (!head.ok() && head.status().code() != Code::kNotFound) {
          return head.status().WithContext("the object store could not be reached");
        }
        // Content-Length and the SHA-256 are signed: the limit checked above holds for what
        // is stored, and the content-addressed key can only ever hold the bytes it names.
        auto put = d->s3->PresignContentPut(d->bucket, key, d->upload_url_ttl, req.sha256(),
                                            static_cast<uint64_t>(req.size()));
        resp->set_upload_url(put.url);
        for (const auto& [name, value] : put.headers) {
          (*resp->mutable_upload_headers())[name] = value;
        }
        resp->set_expires_at(std::chrono::duration_cast<std::chrono::seconds>(
                                 (std::chrono::system_clock::now() + d->upload_url_ttl)
                                     .time_since_epoch())
                                 .count());
        return Status::Ok();
      });

  router.Unary<pb::CreateBuildRequest, pb::CreateBuildResponse>(
      net::ConnectProcedure(kBuildService, "CreateBuild"),
      [d](net::CallContext& ctx, const pb::CreateBuildRequest& req,
          pb::CreateBuildResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(
            std::string ws, Authenticate(*d, ctx, Access::kChange, "CreateBuild"));
        SLIPWAY_RETURN_IF_ERROR(ValidateProjectName(req.project()));
        SLIPWAY_RETURN_IF_ERROR(CheckDockerfilePath(req.dockerfile()));
        SLIPWAY_ASSIGN_OR_RETURN(Project project, d->store->EnsureProject(ws, req.project()));
        SLIPWAY_RETURN_IF_ERROR(CheckContextKey(req.context_key(), project));
        SLIPWAY_RETURN_IF_ERROR(CheckContextUploaded(*d, req.context_key()));
        BuildRecord b;
        b.id = NewId("bld");
        b.project_id = project.id;
        b.context_key = req.context_key();
        b.dockerfile = req.dockerfile().empty() ? "Dockerfile" : req.dockerfile();
        b.build_args = {req.build_args().begin(), req.build_args().end()};
        b.platform = req.platform().empty() ? d->default_platform : req.platform();
        b.target = req.target();
        b.no_cache = req.no_cache();
        SLIPWAY_RETURN_IF_ERROR(d->store->InsertBuild(b, d->max_concurrent_builds));
        SLIPWAY_RETURN_IF_ERROR(d->engine->Start(kBuildWorkflow, project.id, b.id).status());
        resp->set_build_id(b.id);
        return Status::Ok();
      });

  router.Unary<pb::GetBuildRequest, pb::GetBuildResponse>(
      net::ConnectProcedure(kBuildService, "GetBuild"),
      [d](net::CallContext& ctx, const pb::GetBuildRequest& req,
          pb::GetBuildResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws, Authenticate(*d, ctx, Access::kRead, "GetBuild"));
        SLIPWAY_ASSIGN_OR_RETURN(BuildRecord b, d->store->GetBuild(ws, req.build_id()));
        BuildToProto(b, resp);
        return AppendLog(*d->store, b.id, req.log_after(), resp->mutable_log());
      });

  router.ServerStreaming<pb::GetBuildRequest, pb::GetBuildResponse>(
      net::ConnectProcedure(kBuildService, "WatchBuild"),
      [d](net::CallContext& ctx, const pb::GetBuildRequest& req,
          net::StreamWriter<pb::GetBuildResponse>& out) { return WatchBuild(*d, ctx, req, out); });

  router.Unary<pb::CreateDeploymentRequest, pb::CreateDeploymentResponse>(
      net::ConnectProcedure(kDeploymentService, "CreateDeployment"),
      [d](net::CallContext& ctx, const pb::CreateDeploymentRequest& req,
          pb::CreateDeploymentResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(
            std::string ws, Authenticate(*d, ctx, Access::kChange, "CreateDeployment"));
        SLIPWAY_RETURN_IF_ERROR(ValidateProjectName(req.project()));
        if (req.source_case() == pb::CreateDeploymentRequest::SOURCE_NOT_SET) {
          return Status::InvalidArgument("a deployment needs a source: a context (context_key "
                                         "from GenerateUploadURL) or an image");
        }
        const auto& res = req.resources();
        if (res.replicas() < 0 || res.replicas() > 100) {
          return Status::InvalidArgument("replicas must be between 1 and 100");
        }
        if (res.cpu_millicores() < 0 || res.memory_mib() < 0 || res.port() < 0 || res.port() > 65535) {
          return Status::InvalidArgument("cpu, memory and port must be non-negative (port <= 65535)");
        }
        SLIPWAY_ASSIGN_OR_RETURN(Project project, d->store->EnsureProject(ws, req.project()));

        DeploymentRecord dep;
        dep.id = NewId("dep");
        dep.project_id = project.id;
        dep.project_name = project.name;
        dep.workspace_id = project.workspace_id;
        dep.environment = req.environment().empty() ? "production" : req.environment();
        dep.branch = req.branch();
        dep.git_commit_sha = req.git().commit_sha();
        dep.git_commit_message = req.git().commit_message();
        dep.git_commit_author = req.git().author();
        dep.replicas = res.replicas() == 0 ? 1 : res.replicas();
        dep.cpu_millicores = res.cpu_millicores() == 0 ? 500 : res.cpu_millicores();
        dep.memory_mib = res.memory_mib() == 0 ? 256 : res.memory_mib();
        dep.port = res.port();
        dep.health_check_path = res.health_check_path();
        dep.env = {res.env().begin(), res.env().end()};
        if (req.source_case() == pb::CreateDeploymentRequest::kContext) {
          SLIPWAY_RETURN_IF_ERROR(CheckContextKey(req.context().context_key(), project));
          SLIPWAY_RETURN_IF_ERROR(CheckDockerfilePath(req.context().dockerfile()));
          SLIPWAY_RETURN_IF_ERROR(CheckContextUploaded(*d, req.context().context_key()));
          dep.context_key = req.context().context_key();
          dep.dockerfile = req.context().dockerfile().empty() ? "Dockerfile" : req.context().dockerfile();
          dep.build_args = {req.context().build_args().begin(), req.context().build_args().end()};
          dep.build_id = NewId("bld");
        } else {
          dep.source_image = req.image();
          dep.image = req.image();
        }
        BuildRecord b;
        b.platform = req.context().platform().empty() ? d->default_platform
                                                      : req.context().platform();
        b.target = req.context().target();
        b.no_cache = req.context().no_cache();
        SLIPWAY_RETURN_IF_ERROR(StartDeployment(*d, dep, b, req.fail_on_breaking()));
        resp->set_deployment_id(dep.id);
        resp->set_status(pb::DEPLOYMENT_STATUS_PENDING);
        return Status::Ok();
      });

  router.Unary<pb::GetDeploymentRequest, pb::GetDeploymentResponse>(
      net::ConnectProcedure(kDeploymentService, "GetDeployment"),
      [d](net::CallContext& ctx, const pb::GetDeploymentRequest& req,
          pb::GetDeploymentResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(
            std::string ws, Authenticate(*d, ctx, Access::kRead, "GetDeployment"));
        SLIPWAY_ASSIGN_OR_RETURN(DeploymentRecord dep, d->store->GetDeployment(ws, req.deployment_id()));
        DeploymentToProto(dep, d->gateway_public_port, resp->mutable_deployment());
        SLIPWAY_RETURN_IF_ERROR(AddOpenApiCheck(*d->store, dep.id, resp->mutable_deployment()));
        if (d->partition != nullptr) {
          SLIPWAY_ASSIGN_OR_RETURN(auto instances, d->partition->ListInstances(dep.id));
          for (const auto& in : instances) {
            auto* out = resp->mutable_deployment()->add_instances();
            out->set_id(in.instance_id);
            out->set_status(in.status);
            out->set_reason(in.reason);
          }
        }
        return AppendLog(*d->store, dep.build_id, req.log_after(), resp->mutable_build_log());
      });

  router.ServerStreaming<pb::WatchDeploymentRequest, pb::WatchDeploymentResponse>(
      net::ConnectProcedure(kDeploymentService, "WatchDeployment"),
      [d](net::CallContext& ctx, const pb::WatchDeploymentRequest& req,
          net::StreamWriter<pb::WatchDeploymentResponse>& out) {
        return WatchDeployment(*d, ctx, req, out);
      });

  router.Unary<pb::ListDeploymentsRequest, pb::ListDeploymentsResponse>(
      net::ConnectProcedure(kDeploymentService, "ListDeployments"),
      [d](net::CallContext& ctx, const pb::ListDeploymentsRequest& req,
          pb::ListDeploymentsResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(
            std::string ws, Authenticate(*d, ctx, Access::kRead, "ListDeployments"));
        int limit = req.limit() <= 0 || req.limit() > 200 ? 50 : req.limit();
        SLIPWAY_ASSIGN_OR_RETURN(auto list, d->store->ListDeployments(ws, req.project(), limit));
        for (const auto& dep : list) {
          DeploymentToProto(dep, d->gateway_public_port, resp->add_deployments());
        }
        return Status::Ok();
      });

  router.Unary<pb::GetOpenApiSpecRequest, pb::GetOpenApiSpecResponse>(
      net::ConnectProcedure(kDeploymentService, "GetOpenApiSpec"),
      [d](net::CallContext& ctx, const pb::GetOpenApiSpecRequest& req,
          pb::GetOpenApiSpecResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(
            std::string ws, Authenticate(*d, ctx, Access::kRead, "GetOpenApiSpec"));
        SLIPWAY_ASSIGN_OR_RETURN(OpenApiSpecRecord spec,
                                 d->store->GetOpenApiSpec(ws, req.deployment_id()));
        resp->set_spec(spec.spec);
        resp->set_content_type(spec.content_type);
        resp->set_path(spec.path);
        resp->set_scraped_at_ms(spec.scraped_at_ms);
        return Status::Ok();
      });

  router.Unary<pb::RollbackRequest, pb::RollbackResponse>(
      net::ConnectProcedure(kDeploymentService, "Rollback"),
      [d](net::CallContext& ctx, const pb::RollbackRequest& req, pb::RollbackResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(
            std::string ws, Authenticate(*d, ctx, Access::kChange, "Rollback"));
        SLIPWAY_RETURN_IF_ERROR(ValidateProjectName(req.project()));
        const std::string env = req.environment().empty() ? "production" : req.environment();
        SLIPWAY_RETURN_IF_ERROR(ValidateEnvironmentName(env));
        SLIPWAY_ASSIGN_OR_RETURN(auto list, d->store->ListDeployments(ws, req.project(), 200));
        if (list.empty()) {
          return Status::NotFound("project " + req.project() + " has no deployments in this workspace");
        }
        SLIPWAY_ASSIGN_OR_RETURN(std::string live, d->store->LiveDeployment(list[0].project_id, env));
        DeploymentRecord target;
        if (!req.to_deployment_id().empty()) {
          SLIPWAY_ASSIGN_OR_RETURN(target, d->store->GetDeployment(ws, req.to_deployment_id()));
          if (target.project_name != req.project() || target.environment != env) {
            return Status::InvalidArgument(fmt::format(
                "deployment {} is of project {}, environment {}; a rollback of {} in {} goes to "
                "one of its own (use `slipway promote` to move a deployment to another "
                "environment)",
                target.id, target.project_name, target.environment, req.project(), env));
          }
        } else {
          // The newest READY deployment of the environment older than the live one.
          bool past_live = live.empty();
          for (const auto& dep : list) {  // newest first
            if (dep.id == live) {
              past_live = true;
              continue;
            }
            if (past_live && dep.environment == env && dep.status == "READY") {
              target = dep;
              break;
            }
          }
          if (target.id.empty()) {
            return Status::FailedPrecondition(fmt::format(
                "{} in {} has no earlier READY deployment to roll back to", req.project(), env));
          }
        }
        SLIPWAY_RETURN_IF_ERROR(CheckSwitchable(target, "roll back to"));
        if (target.id == live) {
          return Status::FailedPrecondition(fmt::format(
              "deployment {} is already what {} serves; nothing to roll back", target.id, env));
        }
        SLIPWAY_ASSIGN_OR_RETURN(
            std::string run, d->engine->Start(kSwitchWorkflow, target.project_id,
                                              EncodeSwitchInput({target.id, env, true})));
        SLIPWAY_RETURN_IF_ERROR(AwaitRun(*d, run, "the rollback to " + target.id).status());
        SLIPWAY_ASSIGN_OR_RETURN(DeploymentRecord now, d->store->GetDeployment(ws, target.id));
        DeploymentToProto(now, d->gateway_public_port, resp->mutable_deployment());
        return Status::Ok();
      });

  router.Unary<pb::PromoteRequest, pb::PromoteResponse>(
      net::ConnectProcedure(kDeploymentService, "Promote"),
      [d](net::CallContext& ctx, const pb::PromoteRequest& req, pb::PromoteResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws, Authenticate(*d, ctx, Access::kChange, "Promote"));
        const std::string env = req.environment().empty() ? "production" : req.environment();
        SLIPWAY_RETURN_IF_ERROR(ValidateEnvironmentName(env));
        SLIPWAY_ASSIGN_OR_RETURN(DeploymentRecord target, d->store->GetDeployment(ws, req.deployment_id()));
        SLIPWAY_RETURN_IF_ERROR(CheckSwitchable(target, "promote"));
        SLIPWAY_ASSIGN_OR_RETURN(std::string live, d->store->LiveDeployment(target.project_id, env));
        if (live == target.id) {
          return Status::FailedPrecondition(
              fmt::format("deployment {} already serves {}", target.id, env));
        }
        SLIPWAY_ASSIGN_OR_RETURN(
            std::string run, d->engine->Start(kSwitchWorkflow, target.project_id,
                                              EncodeSwitchInput({target.id, env, false})));
        SLIPWAY_RETURN_IF_ERROR(AwaitRun(*d, run, "the promotion of " + target.id).status());
        SLIPWAY_ASSIGN_OR_RETURN(DeploymentRecord now, d->store->GetDeployment(ws, target.id));
        DeploymentToProto(now, d->gateway_public_port, resp->mutable_deployment());
        return Status::Ok();
      });

  router.Unary<pb::RedeployRequest, pb::CreateDeploymentResponse>(
      net::ConnectProcedure(kDeploymentService, "Redeploy"),
      [d](net::CallContext& ctx, const pb::RedeployRequest& req,
          pb::CreateDeploymentResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(
            std::string ws, Authenticate(*d, ctx, Access::kChange, "Redeploy"));
        SLIPWAY_ASSIGN_OR_RETURN(DeploymentRecord old, d->store->GetDeployment(ws, req.deployment_id()));
        if (old.context_key.empty()) {
          return Status::FailedPrecondition(fmt::format(
              "deployment {} was deployed from the image {}, not from source: there is nothing "
              "to build again (deploy the image again with `slipway deploy --image`)",
              old.id, old.source_image));
        }
        auto head = d->s3->HeadObject(d->bucket, old.context_key);
        if (!head.ok()) {
          if (head.status().code() == Code::kNotFound) {
            return Status::FailedPrecondition(fmt::format(
                "the source of deployment {} ({}) is no longer kept: retention or a delete "
                "removed it; deploy from the source directory again with `slipway deploy`",
                old.id, old.context_key));
          }
          return head.status().WithContext("the object store could not be reached");
        }
        BuildRecord b;
        if (!old.build_id.empty()) {
          SLIPWAY_ASSIGN_OR_RETURN(BuildRecord old_build, d->store->GetBuildById(old.build_id));
          b.platform = old_build.platform;
          b.target = old_build.target;
        } else {
          b.platform = d->default_platform;
        }
        b.no_cache = req.no_cache();
        DeploymentRecord dep = old;
        dep.id = NewId("dep");
        dep.build_id = NewId("bld");
        dep.status = "PENDING";
        dep.error.clear();
        dep.failed_step.clear();
        dep.image.clear();
        dep.hostnames.clear();
        // The same settings include the contract policy the original was deployed with.
        SLIPWAY_ASSIGN_OR_RETURN(OpenApiCheckRecord old_check, d->store->GetOpenApiCheck(old.id));
        SLIPWAY_RETURN_IF_ERROR(StartDeployment(*d, dep, b, old_check.fail_on_breaking));
        resp->set_deployment_id(dep.id);
        resp->set_status(pb::DEPLOYMENT_STATUS_PENDING);
        return Status::Ok();
      });

  router.Unary<pb::DeleteDeploymentRequest, pb::DeleteDeploymentResponse>(
      net::ConnectProcedure(kDeploymentService, "DeleteDeployment"),
      [d](net::CallContext& ctx, const pb::DeleteDeploymentRequest& req,
          pb::DeleteDeploymentResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(
            std::string ws, Authenticate(*d, ctx, Access::kChange, "DeleteDeployment"));
        SLIPWAY_ASSIGN_OR_RETURN(DeploymentRecord dep, d->store->GetDeployment(ws, req.deployment_id()));
        if (dep.status == "DELETED") {
          DeploymentToProto(dep, d->gateway_public_port, resp->mutable_deployment());
          resp->set_summary("already deleted");
          return Status::Ok();
        }
        if (dep.status != "READY" && dep.status != "FAILED") {
          return Status::FailedPrecondition(fmt::format(
              "deployment {} is still {}: wait until it is READY or FAILED, then delete it",
              dep.id, dep.status));
        }
        if (!dep.live_environments.empty() && !req.force()) {
          return Status::FailedPrecondition(fmt::format(
              "deployment {} is what {} serves now: roll back or deploy first, or pass --force "
              "to delete it anyway (its hosts then answer 404)",
              dep.id, fmt::join(dep.live_environments, ", ")));
        }
        SLIPWAY_ASSIGN_OR_RETURN(std::string run,
                                 d->engine->Start(kDeleteWorkflow, dep.project_id, dep.id));
        SLIPWAY_ASSIGN_OR_RETURN(std::string summary, AwaitRun(*d, run, "deleting " + dep.id));
        SLIPWAY_ASSIGN_OR_RETURN(DeploymentRecord now, d->store->GetDeployment(ws, dep.id));
        DeploymentToProto(now, d->gateway_public_port, resp->mutable_deployment());
        resp->set_summary(summary);
        return Status::Ok();
      });

  router.Unary<pb::GetLogsRequest, pb::GetLogsResponse>(
      net::ConnectProcedure(kDeploymentService, "GetLogs"),
      [d](net::CallContext& ctx, const pb::GetLogsRequest& req, pb::GetLogsResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws, Authenticate(*d, ctx, Access::kRead, "GetLogs"));
        SLIPWAY_ASSIGN_OR_RETURN(DeploymentRecord dep, d->store->GetDeployment(ws, req.deployment_id()));
        if (d->krane == nullptr) {
          return Status::FailedPrecondition("this control plane has no krane, so no runtime logs");
        }
        kv1::GetLogsRequest k;
        k.set_namespace_(dep.workspace_id);
        k.set_deployment_id(dep.id);
        if (req.has_instance()) k.set_instance(req.instance());
        k.set_after_ns(req.after_ns());
        k.set_tail(req.tail());
        auto got = d->krane->Call<kv1::GetLogsResponse>(
            net::ConnectProcedure("slipway.krane.v1.DeploymentService", "GetLogs"), k);
        if (!got.ok()) {
          if (got.status().code() == Code::kNotFound) {
            return Status::NotFound(fmt::format(
                "deployment {} has no instances running to read logs from ({}): {}", dep.id,
                dep.status, got.status().message()));
          }
          return got.status().WithContext("reading the logs from krane");
        }
        resp->set_more(got->more());
        for (const auto& l : got->lines()) {
          auto* out = resp->add_lines();
          out->set_instance_id(l.instance_id());
          out->set_time_ns(l.time_ns());
          out->set_stream(l.stream());
          out->set_text(l.text());
        }
        return Status::Ok();
      });
}

}  // namespace slipway::ctrl
