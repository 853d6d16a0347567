#include "ctrl/services.h"

#include <fmt/format.h>

#include "base/ids.h"
#include "ctrl/deploy_workflow.h"
#include "ctrl/routing.h"
#include "slipway/ctrl/v1/build.pb.h"
#include "slipway/ctrl/v1/ctrl.pb.h"
#include "slipway/ctrl/v1/deployment.pb.h"

namespace slipway::ctrl {
namespace {

namespace pb = slipway::ctrl::v1;

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

Result<std::string> Authenticate(const ServiceDeps& deps, net::CallContext& ctx) {
  return deps.store->WorkspaceForToken(ctx.bearer_token());
}

// The context key a client names must be one of this project's: no reading other projects'
// (or other workspaces') sources through a crafted key.
Status CheckContextKey(const std::string& key, const Project& project) {
  std::string prefix = "contexts/" + project.id + "/";
  if (key.rfind(prefix, 0) != 0 || key.size() != prefix.size() + 64 + 7 ||
      key.substr(key.size() - 7) != ".tar.gz" || !IsLowerHex(key.substr(prefix.size(), 64), 64)) {
    return Status::InvalidArgument(fmt::format(
        "context key \"{}\" is not one of project {}'s (use the key GenerateUploadURL returned)",
        key, project.name));
  }
  return Status::Ok();
}

// A build needs its context in the store; refusing here, before any record exists, tells the
// client at once instead of through a build that fails later.
Status CheckContextUploaded(const ServiceDeps& deps, const std::string& key) {
  auto head = deps.s3->HeadObject(deps.bucket, key);
  if (head.ok()) return Status::Ok();
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
  out->set_build_id(d.build_id);
  out->set_created_at_ms(d.created_at_ms);
  out->set_updated_at_ms(d.updated_at_ms);
}

template <typename LogField>
Status AppendLog(Store& store, const std::string& build_id, int64_t after, LogField* out) {
  if (build_id.empty()) return Status::Ok();
  SLIPWAY_ASSIGN_OR_RETURN(auto lines, store.ReadBuildLog(build_id, after));
  for (const auto& l : lines) {
    auto* line = out->Add();
    line->set_seq(l.seq);
    line->set_time_ms(l.time_ms);
    line->set_text(l.text);
  }
  return Status::Ok();
}

}  // namespace

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

std::string ContextKey(const std::string& project_id, const std::string& sha256) {
  return fmt::format("contexts/{}/{}.tar.gz", project_id, sha256);
}

void RegisterCtrlServices(net::ConnectRouter& router, const ServiceDeps& deps) {
  const ServiceDeps* d = &deps;

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
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws, Authenticate(*d, ctx));
        SLIPWAY_RETURN_IF_ERROR(ValidateProjectName(req.project()));
        if (!IsLowerHex(req.sha256(), 64)) {
          return Status::InvalidArgument("sha256 must be the 64 lower-case hex digits of the "
                                         "archive's SHA-256");
        }
        if (req.size() <= 0) return Status::InvalidArgument("size must be the archive's byte count");
        if (static_cast<uint64_t>(req.size()) > d->max_context_bytes) {
          return Status::ResourceExhausted(fmt::format(
              "the build context is {} bytes, over this server's limit of {} bytes (exclude "
              "large files with .dockerignore)",
              req.size(), d->max_context_bytes));
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
        // Content-Length is signed, so the limit checked above holds for what is stored.
        resp->set_upload_url(d->s3->PresignPut(d->bucket, key, d->upload_url_ttl, "",
                                               static_cast<uint64_t>(req.size())));
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
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws, Authenticate(*d, ctx));
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
        SLIPWAY_RETURN_IF_ERROR(d->store->InsertBuild(b));
        SLIPWAY_RETURN_IF_ERROR(d->engine->Start(kBuildWorkflow, project.id, b.id).status());
        resp->set_build_id(b.id);
        return Status::Ok();
      });

  router.Unary<pb::GetBuildRequest, pb::GetBuildResponse>(
      net::ConnectProcedure(kBuildService, "GetBuild"),
      [d](net::CallContext& ctx, const pb::GetBuildRequest& req,
          pb::GetBuildResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws, Authenticate(*d, ctx));
        SLIPWAY_ASSIGN_OR_RETURN(BuildRecord b, d->store->GetBuild(ws, req.build_id()));
        resp->set_build_id(b.id);
        resp->set_project(b.project_name);
        resp->set_status(BuildStatusToProto(b.status));
        resp->set_image(b.image);
        resp->set_error(b.error);
        resp->set_created_at_ms(b.created_at_ms);
        resp->set_finished_at_ms(b.finished_at_ms);
        return AppendLog(*d->store, b.id, req.log_after(), resp->mutable_log());
      });

  router.Unary<pb::CreateDeploymentRequest, pb::CreateDeploymentResponse>(
      net::ConnectProcedure(kDeploymentService, "CreateDeployment"),
      [d](net::CallContext& ctx, const pb::CreateDeploymentRequest& req,
          pb::CreateDeploymentResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws, Authenticate(*d, ctx));
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
        SLIPWAY_RETURN_IF_ERROR(d->store->InsertDeployment(dep, DeploymentStepNames()));
        if (!dep.build_id.empty()) {
          BuildRecord b;
          b.id = dep.build_id;
          b.project_id = project.id;
          b.deployment_id = dep.id;
          b.context_key = dep.context_key;
          b.dockerfile = dep.dockerfile;
          b.build_args = dep.build_args;
          b.platform = d->default_platform;
          SLIPWAY_RETURN_IF_ERROR(d->store->InsertBuild(b));
          SLIPWAY_RETURN_IF_ERROR(d->store->SetDeploymentImage(dep.id, "", b.id));
        }
        SLIPWAY_RETURN_IF_ERROR(d->engine->Start(kDeployWorkflow, project.id, dep.id).status());
        resp->set_deployment_id(dep.id);
        resp->set_status(pb::DEPLOYMENT_STATUS_PENDING);
        return Status::Ok();
      });

  router.Unary<pb::GetDeploymentRequest, pb::GetDeploymentResponse>(
      net::ConnectProcedure(kDeploymentService, "GetDeployment"),
      [d](net::CallContext& ctx, const pb::GetDeploymentRequest& req,
          pb::GetDeploymentResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws, Authenticate(*d, ctx));
        SLIPWAY_ASSIGN_OR_RETURN(DeploymentRecord dep, d->store->GetDeployment(ws, req.deployment_id()));
        DeploymentToProto(dep, d->gateway_public_port, resp->mutable_deployment());
        return AppendLog(*d->store, dep.build_id, req.log_after(), resp->mutable_build_log());
      });

  router.Unary<pb::ListDeploymentsRequest, pb::ListDeploymentsResponse>(
      net::ConnectProcedure(kDeploymentService, "ListDeployments"),
      [d](net::CallContext& ctx, const pb::ListDeploymentsRequest& req,
          pb::ListDeploymentsResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws, Authenticate(*d, ctx));
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
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws, Authenticate(*d, ctx));
        SLIPWAY_ASSIGN_OR_RETURN(OpenApiSpecRecord spec,
                                 d->store->GetOpenApiSpec(ws, req.deployment_id()));
        resp->set_spec(spec.spec);
        resp->set_content_type(spec.content_type);
        resp->set_path(spec.path);
        resp->set_scraped_at_ms(spec.scraped_at_ms);
        return Status::Ok();
      });
}

}  // namespace slipway::ctrl
