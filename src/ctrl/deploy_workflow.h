// The durable workflows of the control plane:
//   "build"  — a standalone build (BuildService.CreateBuild), keyed by project;
//   "deploy" — a deployment (DeploymentService.CreateDeployment), keyed by project, whose steps
//              read in the order of DESIGN.md's flow: build, schedule, wait, openapi, route.
// Each step is journaled by the workflow engine; the deployment's visible status and step
// table in the main database follow along, so GetDeployment shows progress as it happens.
//
// A deployment that fails at schedule or later has its instances removed from krane and from
// the partition database (the journaled step "cleanup") before it is marked FAILED, so once a
// client sees FAILED nothing of it is left running. The wait deadline is journaled the first
// time the run reaches it ("@deadline/wait"): a ctrl restart does not give instances more time.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "ctrl/app_env.h"
#include "ctrl/build/backend.h"
#include "ctrl/partition_store.h"
#include "ctrl/store.h"
#include "storage/s3_client.h"
#include "workflow/engine.h"

namespace slipway::net {
class ConnectClient;
}

namespace slipway::ctrl {

class CtrlMetrics;

inline constexpr std::string_view kBuildWorkflow = "build";
inline constexpr std::string_view kDeployWorkflow = "deploy";

// The deployment steps in order, as recorded in deployment_steps.
const std::vector<std::string>& DeploymentStepNames();

struct WorkflowDeps {
  Store* store = nullptr;
  storage::S3Client* s3 = nullptr;
  std::string bucket;
  build::BuildBackend* builder = nullptr;
  net::ConnectClient* krane = nullptr;  // null: deployments stop after the build with an error
  PartitionStore* partition = nullptr;  // required with krane: instances and gateway routes
  std::chrono::milliseconds wait_interval{1000};
  std::chrono::milliseconds wait_deadline{5 * 60 * 1000};
  std::string apex_domain = "localhost";
  // Becomes true when ctrl is stopping: a running build is canceled (the step runs again when
  // the deployment resumes, cheaply from the builder's cache).
  const std::atomic<bool>* stopping = nullptr;
  // Opens the secrets given to instances (app_env.h); null: deployments get no stored variables.
  const SecretBox* secrets = nullptr;
  // A build still going after this long is stopped and fails (0: no limit).
  std::chrono::milliseconds build_timeout{0};
  // A build's stored log stops at this many bytes (0: no cap).
  uint64_t max_build_log_bytes = 0;
  // Step and build durations; null: not counted.
  CtrlMetrics* metrics = nullptr;
};

// Registers both workflows on the engine. deps must outlive the engine.
void RegisterWorkflows(workflow::WorkflowEngine& engine, const WorkflowDeps& deps);

// "<registry-less repository>:<tag>" for a project's image: "myapp:dep_3f9a0c1e5b7d2a4f".
std::string ImageName(const std::string& project_name, const std::string& tag);

}  // namespace slipway::ctrl
