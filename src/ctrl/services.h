// The Connect services of ctrl: BuildService, DeploymentService, OpenApiService, TokenService,
// EnvService and CtrlService. Every method but CtrlService.Liveness authenticates its caller's
// bearer token and works only inside the token's workspace; a read token only looks.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "ctrl/app_env.h"
#include "ctrl/partition_store.h"
#include "ctrl/store.h"
#include "net/connect.h"
#include "storage/s3_client.h"
#include "workflow/engine.h"

namespace slipway::ctrl {

struct ServiceDeps {
  Store* store = nullptr;
  storage::S3Client* s3 = nullptr;
  workflow::WorkflowEngine* engine = nullptr;
  std::string bucket;
  std::chrono::seconds upload_url_ttl{15 * 60};
  uint64_t max_context_bytes = 0;
  std::string default_platform = "linux/amd64";
  // The port clients reach the gateway on: Deployment.urls are http://<host>:<port> (no port
  // when 80).
  int gateway_public_port = 8080;
  // How long Rollback, Promote and DeleteDeployment wait for their run before answering (the
  // run goes on regardless).
  std::chrono::milliseconds lifecycle_timeout{6 * 60 * 1000};
  // Where runtime logs come from; null: GetLogs answers that there is no krane.
  net::ConnectClient* krane = nullptr;
  // Where GetDeployment reads the instances from (their status and why); null: none shown.
  PartitionStore* partition = nullptr;
  // Seals secrets set through EnvService (app_env.h); never null once registered.
  const SecretBox* secrets = nullptr;
  // Builds queued or running at once per workspace; 0: no cap.
  int64_t max_concurrent_builds = 0;
};

// Registers every ctrl service on router; deps must outlive it.
void RegisterCtrlServices(net::ConnectRouter& router, const ServiceDeps& deps);

// What a method does to the workspace: a read token may only call kRead methods.
enum class Access { kRead, kChange };
// The caller's workspace. Unauthenticated without a valid token (unknown, expired, revoked:
// the message says which); PermissionDenied for a read token calling a kChange method.
Result<std::string> Authenticate(const ServiceDeps& deps, net::CallContext& ctx, Access access,
                                 std::string_view method);

// Project names become DNS labels and image repositories: 1-40 of [a-z0-9-], starting and
// ending with a letter or digit. Returns InvalidArgument saying so otherwise.
Status ValidateProjectName(const std::string& name);
// Environment names become part of a DNS label: 1-20 of [a-z0-9-], not starting or ending '-'.
Status ValidateEnvironmentName(const std::string& name);

// "contexts/<project id>/<sha256>.tar.gz": content-addressed within a project.
std::string ContextKey(const std::string& project_id, const std::string& sha256);

}  // namespace slipway::ctrl
