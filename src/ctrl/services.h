// The Connect services of ctrl: BuildService, DeploymentService and CtrlService. Every method
// but CtrlService.Liveness authenticates its caller's bearer token and works only inside the
// token's workspace.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

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
};

// Registers the three services on router; deps must outlive it.
void RegisterCtrlServices(net::ConnectRouter& router, const ServiceDeps& deps);

// Project names become DNS labels and image repositories: 1-40 of [a-z0-9-], starting and
// ending with a letter or digit. Returns InvalidArgument saying so otherwise.
Status ValidateProjectName(const std::string& name);

// "contexts/<project id>/<sha256>.tar.gz": content-addressed within a project.
std::string ContextKey(const std::string& project_id, const std::string& sha256);

}  // namespace slipway::ctrl
