// How the CLI shows deployments and builds: status names, step lines with their times, the
// `slipway status` page, the `slipway list` table, and the JSON documents of --json. Pure
// functions of the API messages and "now", so tests can pin them down.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace slipway::ctrl::v1 {
class Deployment;
class DeploymentStep;
}  // namespace slipway::ctrl::v1

namespace slipway::cli {

// "READY", "FAILED", "BUILDING", ... (the API's enum without its prefix).
std::string DeploymentStatusName(int status);
// "pending", "running", "succeeded", "failed".
std::string StepStatusName(int status);
// "SUCCEEDED", "FAILED", "RUNNING", "QUEUED".
std::string BuildStatusName(int status);

// How long a step took, or has been running at `now_ms`; negative when it has not started.
int64_t StepElapsedMs(const ctrl::v1::DeploymentStep& step, int64_t now_ms);
// "  build      succeeded  3.2s" / "  schedule   failed     0.1s  <error>" / "  wait pending".
std::string FormatStep(const ctrl::v1::DeploymentStep& step, int64_t now_ms);

// The `slipway status` page: identity, status, git, image, steps with times, URLs, error.
std::vector<std::string> FormatDeployment(const ctrl::v1::Deployment& d, int64_t now_ms);
// The `slipway list` table (a header line, then one line per deployment).
std::vector<std::string> FormatDeploymentTable(const std::vector<const ctrl::v1::Deployment*>& list,
                                               int64_t now_ms);
// "12s ago", "5m ago", "3h ago", "2d ago".
std::string FormatAge(int64_t then_ms, int64_t now_ms);

// The JSON of one deployment (--json of deploy, status, list): deployment_id, project,
// environment, branch, status, urls, error, failed_step, image, build_id, git, steps
// (name, status, started_at_ms, finished_at_ms, elapsed_ms, error), instances (id, status,
// reason; GetDeployment only), created_at_ms,
// updated_at_ms.
nlohmann::json DeploymentJson(const ctrl::v1::Deployment& d, int64_t now_ms);

// Milliseconds since the Unix epoch, now.
int64_t NowMs();

}  // namespace slipway::cli
