// ctrl's records in the main database: workspaces and their API tokens, projects and their
// environments, builds with their log, deployments with their steps.
//
// Every read that a client can reach is scoped by workspace: a record of another workspace is
// NotFound, never PermissionDenied, so names and ids do not leak across workspaces.
// Thread-safe (the Database is); each method is one statement or one transaction.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "db/database.h"

namespace slipway::ctrl {

struct Project {
  std::string id;
  std::string workspace_id;
  std::string name;
};

struct BuildRecord {
  std::string id;
  std::string project_id;
  std::string project_name;
  std::string deployment_id;  // empty for a standalone build
  std::string context_key;
  std::string dockerfile;
  std::map<std::string, std::string> build_args;
  std::string platform;
  std::string status;  // queued, running, succeeded, failed
  std::string image;
  std::string error;
  int64_t created_at_ms = 0;
  int64_t finished_at_ms = 0;
};

struct LogLineRecord {
  int64_t seq = 0;
  int64_t time_ms = 0;
  std::string text;
};

struct StepRecord {
  std::string name;
  std::string status;  // pending, running, succeeded, failed
  int64_t started_at_ms = 0;
  int64_t finished_at_ms = 0;
  std::string error;
};

struct DeploymentRecord {
  std::string id;
  std::string project_id;
  std::string project_name;
  std::string workspace_id;
  std::string environment;
  std::string branch;
  std::string git_commit_sha, git_commit_message, git_commit_author;
  std::string context_key, dockerfile, source_image;
  std::map<std::string, std::string> build_args;
  std::string status;  // PENDING, BUILDING, DEPLOYING, NETWORK, READY, FAILED
  std::string error;
  std::string failed_step;
  std::string image;
  std::string build_id;
  int64_t replicas = 1, cpu_millicores = 0, memory_mib = 0, port = 0;
  std::string health_check_path;
  std::map<std::string, std::string> env;
  std::vector<std::string> hostnames;
  bool has_openapi_spec = false;
  std::vector<StepRecord> steps;
  int64_t created_at_ms = 0, updated_at_ms = 0;
};

struct DomainClaim {
  std::string hostname;
  std::string kind;  // environment, branch, deployment
};

struct OpenApiSpecRecord {
  std::string deployment_id;
  std::string path;
  std::string content_type;
  std::string spec;
  int64_t scraped_at_ms = 0;
};

class Store {
 public:
  Store(db::Database& db, Clock& clock = SystemClock()) : db_(db), clock_(clock) {}

  // --- workspaces and tokens ---
  // Creates the workspace when missing; returns its id.
  Result<std::string> EnsureWorkspace(const std::string& name);
  // Issues a new token for the workspace; the plaintext is returned once, only its SHA-256 is
  // stored.
  Result<std::string> IssueToken(const std::string& workspace_id, const std::string& token_name);
  // The workspace a token belongs to; Unauthenticated when the token is unknown.
  Result<std::string> WorkspaceForToken(const std::string& token);

  // --- projects ---
  // The project of that name in the workspace, created (with its environments `production`
  // and `preview`) on first use.
  Result<Project> EnsureProject(const std::string& workspace_id, const std::string& name);

  // --- builds ---
  Status InsertBuild(const BuildRecord& build);
  Result<BuildRecord> GetBuild(const std::string& workspace_id, const std::string& build_id);
  // Unscoped: for the workflow, which already knows the build is real.
  Result<BuildRecord> GetBuildById(const std::string& build_id);
  Status SetBuildRunning(const std::string& build_id);
  Status FinishBuild(const std::string& build_id, const std::string& image, const Status& result);
  // Appends lines after the build's last one; returns the last seq written.
  Status AppendBuildLog(const std::string& build_id, const std::vector<std::string>& lines);
  Result<std::vector<LogLineRecord>> ReadBuildLog(const std::string& build_id, int64_t after,
                                                  int limit = 1000);

  // --- deployments ---
  Status InsertDeployment(const DeploymentRecord& deployment, const std::vector<std::string>& steps);
  Result<DeploymentRecord> GetDeployment(const std::string& workspace_id, const std::string& id);
  Result<DeploymentRecord> GetDeploymentById(const std::string& id);
  Result<std::vector<DeploymentRecord>> ListDeployments(const std::string& workspace_id,
                                                        const std::string& project_name,
                                                        int limit);
  Status SetDeploymentStatus(const std::string& id, const std::string& status);
  Status SetDeploymentImage(const std::string& id, const std::string& image, const std::string& build_id);
  Status SetDeploymentHostnames(const std::string& id, const std::vector<std::string>& hostnames);
  Status FailDeployment(const std::string& id, const std::string& step, const std::string& error);
  Status StartStep(const std::string& deployment_id, const std::string& step);
  Status FinishStep(const std::string& deployment_id, const std::string& step, const Status& result);

  // --- domains and OpenAPI specs ---
  // Points the domains at the deployment, in one transaction. A host already held by another
  // project (of any workspace) is FailedPrecondition and nothing changes.
  Status ClaimDomains(const std::string& project_id, const std::string& deployment_id,
                      const std::vector<DomainClaim>& domains);
  // Records (or replaces) the spec scraped from the deployment.
  Status SaveOpenApiSpec(const OpenApiSpecRecord& spec);
  // NotFound when the deployment is not in the workspace or has no spec.
  Result<OpenApiSpecRecord> GetOpenApiSpec(const std::string& workspace_id,
                                           const std::string& deployment_id);

  int64_t NowMs() const;

 private:
  Result<DeploymentRecord> LoadDeployment(const std::string& where, const db::Params& params);

  db::Database& db_;
  Clock& clock_;
};

}  // namespace slipway::ctrl
