// `slipway run ctrl`: the control plane. Connect services (BuildService, DeploymentService,
// CtrlService) over HTTP, the main database, the durable workflow engine that runs builds and
// deployments, the build backend, and the object store that holds build contexts (which ctrl
// only presigns; the bytes go from the CLI to the store and from the store to the builder).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ctrl/retention.h"
#include "base/status.h"
#include "ctrl/build/backend.h"
#include "storage/s3_client.h"

namespace slipway::ctrl {

struct CtrlOptions {
  std::string listen = "127.0.0.1:7000";
  std::string database_url;            // DATABASE_URL: sqlite path or postgresql:// URL
  std::string partition_database_url;  // PARTITION_DATABASE_URL: needed with krane_url

  storage::S3ClientOptions s3;         // endpoint, public endpoint, region, credentials
  std::string bucket = "slipway";      // S3_BUCKET: holds contexts/<project>/<sha256>.tar.gz
  std::chrono::seconds upload_url_ttl{15 * 60};
  uint64_t max_context_bytes = 2ull * 1024 * 1024 * 1024;  // MAX_CONTEXT_BYTES
  // MAX_BUILD_LOG_BYTES: a build's stored log stops here, with a line saying so; 0: no cap.
  uint64_t max_build_log_bytes = 8ull * 1024 * 1024;
  // BUILD_TIMEOUT: a build still going after this long is stopped and fails, saying so.
  std::chrono::milliseconds build_timeout{30 * 60 * 1000};
  // MAX_CONCURRENT_BUILDS: builds queued or running at once per workspace; more are refused.
  int max_concurrent_builds = 4;
  // SLIPWAY_SECRET_KEY: 64 hex digits, the AES-256-GCM key of stored secrets; empty: no secrets.
  std::string secret_key;

  build::BuildBackendConfig build;

  std::string krane_url;    // KRANE_URL: "http://127.0.0.1:7070"; empty: no deploy steps past build
  std::string krane_token;  // KRANE_TOKEN

  std::string apex_domain = "localhost";      // hostnames are <name>.<apex>
  int gateway_public_port = 8080;  // GATEWAY_PUBLIC_PORT: the port in Deployment.urls (80: none)
  std::chrono::milliseconds wait_interval{1000};     // krane GetDeployment poll
  std::chrono::milliseconds wait_deadline{5 * 60 * 1000};  // all instances RUNNING by then
  int workers = 4;
  // CTRL_MAX_CONNECTIONS: client connections served at once (each CLI following a deployment
  // holds one); past it a client is answered 503 naming this setting.
  size_t max_connections = 1024;
  RetentionPolicy retention;  // RETENTION_GRACE, RETENTION_KEEP, RETENTION_INTERVAL
  // Workflow lease; a ctrl that dies holding a run is replaced after this long.
  std::chrono::milliseconds lease_duration{std::chrono::seconds(15)};
};

class CtrlServer {
 public:
  static Result<std::unique_ptr<CtrlServer>> Start(const CtrlOptions& options);
  virtual ~CtrlServer() = default;
  virtual std::string endpoint() const = 0;  // "http://127.0.0.1:7000"
  // Creates the workspace if missing and issues a new API token for it (slipway dev, tests).
  virtual Result<std::string> IssueToken(const std::string& workspace) = 0;
  virtual void Shutdown() = 0;
};

}  // namespace slipway::ctrl
