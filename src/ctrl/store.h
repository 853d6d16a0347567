// ctrl's records in the main database: workspaces and their API tokens, projects and their
// environments, builds with their log, deployments with their steps.
//
// Every read that a client can reach is scoped by workspace: a record of another workspace is
// NotFound, never PermissionDenied, so names and ids do not leak across workspaces.
// Thread-safe (the Database is); each method is one statement or one transaction.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "db/change_notices.h"
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
  std::string platform;  // "linux/amd64" or a comma list of platforms
  std::string target;    // Dockerfile stage; empty: the last
  bool no_cache = false;  // build every step again (redeploy --no-cache)
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
  std::vector<std::string> live_environments;  // environments whose host serves it now
  int64_t stopped_at_ms = 0;  // when the retention policy stopped its instances; 0: it did not
  bool has_openapi_spec = false;
  std::vector<StepRecord> steps;
  int64_t created_at_ms = 0, updated_at_ms = 0;
};

// What the retention policy (retention.h) looks at of one deployment.
struct RetentionCandidate {
  std::string id;
  std::string environment;
  std::string status;
  std::string context_key;
  bool live = false;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t superseded_at_ms = 0;  // 0: never was live, or still is
  int64_t stopped_at_ms = 0;
  int64_t context_deleted_at_ms = 0;
};

struct DomainClaim {
  std::string hostname;
  std::string kind;         // environment, branch, deployment
  std::string environment;  // for an environment host: the environment it serves
};

struct OpenApiSpecRecord {
  std::string deployment_id;
  std::string path;
  std::string content_type;
  std::string spec;
  int64_t scraped_at_ms = 0;
};

// The OpenAPI contract check of one deployment (see deploy_workflow.h).
struct OpenApiCheckRecord {
  std::string deployment_id;
  bool fail_on_breaking = false;
  bool checked = false;  // the deploy run reached its contract check
  std::string base_deployment_id;
  bool has_breaking = false;
  bool held_back = false;
  std::string note;
};

// An API token as listed: never its plaintext, which exists only in the answer that created it.
struct TokenRecord {
  std::string id;
  std::string name;
  std::string scope;  // "deploy" (everything) or "read" (look, change nothing)
  int64_t created_at_ms = 0;
  int64_t expires_at_ms = 0;  // 0: never
  int64_t revoked_at_ms = 0;  // 0: not revoked
  int64_t last_used_at_ms = 0;
};

// Who is calling: what an accepted token stands for.
struct Caller {
  std::string workspace_id;
  std::string token_id;
  std::string scope;
  bool can_change() const { return scope == "deploy"; }
};

// One of a project's environment variables. For a secret, `value` is the sealed form
// (app_env.h); callers outside ctrl never see it.
struct EnvVarRecord {
  std::string environment;  // "" for every environment of the project
  std::string name;
  bool secret = false;
  std::string value;
  int64_t updated_at_ms = 0;
};

// The refusal of a build over the per-workspace cap on concurrent builds.
Status TooManyBuilds(int64_t active, int64_t limit);

class Store {
 public:
  Store(db::Database& db, Clock& clock = SystemClock()) : db_(db), clock_(clock) {}

  // --- workspaces and tokens ---
  // Creates the workspace when missing; returns its id.
  Result<std::string> EnsureWorkspace(const std::string& name);
  // Issues a new token for the workspace; the plaintext is returned once, only its SHA-256 is
  // stored.
  Result<std::string> IssueToken(const std::string& workspace_id, const std::string& token_name);
  // Issues a token with a scope ("deploy" or "read") and an expiry (0: never); returns its
  // record and its plaintext (the only time the plaintext exists outside the caller).
  // Implemented, with the other token methods, in store_tokens.cc.
  Result<std::pair<TokenRecord, std::string>> CreateToken(const std::string& workspace_id,
                                                          const std::string& name,
                                                          const std::string& scope,
                                                          int64_t expires_at_ms);
  // Who a token stands for. Unauthenticated when it is missing, unknown, expired or revoked,
  // with a message that says which and what to do.
  Result<Caller> Authenticate(const std::string& token);
  // The workspace a token belongs to; Unauthenticated as Authenticate.
  Result<std::string> WorkspaceForToken(const std::string& token);
  // The workspace's tokens, newest first, revoked and expired ones included.
  Result<std::vector<TokenRecord>> ListTokens(const std::string& workspace_id);
  // Revokes a token of the workspace (NotFound for another workspace's); revoking it again
  // keeps the first revocation time.
  Result<TokenRecord> RevokeToken(const std::string& workspace_id, const std::string& token_id);

  // --- projects ---
  // The project of that name in the workspace, created (with its environments `production`
  // and `preview`) on first use.
  Result<Project> EnsureProject(const std::string& workspace_id, const std::string& name);

  // The project of that name in the workspace, or nullopt: for reads that must not create it.
  Result<std::optional<Project>> FindProject(const std::string& workspace_id,
                                             const std::string& name);

  // --- environment variables (store_env.cc) ---
  Status SetEnvVar(const std::string& project_id, const EnvVarRecord& var);
  // Every variable of the project, by environment ("" first) then name.
  Result<std::vector<EnvVarRecord>> ListEnvVars(const std::string& project_id);
  // False when the project had no such variable.
  Result<bool> UnsetEnvVar(const std::string& project_id, const std::string& environment,
                           const std::string& name);

  // --- the depot build backend's records (build/depot/depot_records.h) ---
  // The Depot project id of the project; empty when it has none yet.
  Result<std::string> GetDepotProjectId(const std::string& project_id);
  // Sets it unless one is set already; returns the one that holds afterwards.
  Result<std::string> SetDepotProjectIdOnce(const std::string& project_id,
                                            const std::string& depot_project_id);
  // The Depot build (id, build token) open for our build; empty strings when none is.
  Result<std::pair<std::string, std::string>> GetOpenDepotBuild(const std::string& build_id);
  Status SetOpenDepotBuild(const std::string& build_id, const std::string& depot_build_id,
                           const std::string& build_token);

  // --- builds ---
  // With max_active_in_workspace > 0, ResourceExhausted (TooManyBuilds) when the build's
  // workspace already has that many builds queued or running; checked and inserted atomically.
  Status InsertBuild(const BuildRecord& build, int64_t max_active_in_workspace = 0);
  Result<BuildRecord> GetBuild(const std::string& workspace_id, const std::string& build_id);
  // Unscoped: for the workflow, which already knows the build is real.
  Result<BuildRecord> GetBuildById(const std::string& build_id);
  Status SetBuildRunning(const std::string& build_id);
  Status FinishBuild(const std::string& build_id, const std::string& image, const Status& result);
  // Records which backend made a build's image (for ReusableBuild).
  Status SetBuildBackend(const std::string& build_id, const std::string& backend);
  // The newest succeeded build of the same project, other than `b`, with exactly b's inputs
  // (context, Dockerfile, build args, platforms, target) made by `backend`; nullopt when none.
  Result<std::optional<BuildRecord>> ReusableBuild(const BuildRecord& b, const std::string& backend);
  // Appends lines after the build's last one. With max_bytes > 0, the build's stored log stops at
  // that many bytes of line text (across calls and resumed builds): the lines past it are
  // dropped and one last line says the log was truncated.
  Status AppendBuildLog(const std::string& build_id, const std::vector<std::string>& lines,
                        uint64_t max_bytes = 0);
  // How many builds of the workspace are queued or running now.
  Result<int64_t> ActiveBuilds(const std::string& workspace_id);
  Result<std::vector<LogLineRecord>> ReadBuildLog(const std::string& build_id, int64_t after,
                                                  int limit = 1000);

  // Calls on_change with the id of each deployment or build whose change was committed from now
  // on, by this process or (PostgreSQL) another ctrl; with "" when changes may have gone by
  // unheard. Until the subscription is destroyed; on_change must stay cheap (wake a thread).
  std::unique_ptr<db::ChangeSubscription> SubscribeToChanges(
      std::function<void(std::string_view id)> on_change);

  // --- deployments ---
  Status InsertDeployment(const DeploymentRecord& deployment, const std::vector<std::string>& steps);
  Result<DeploymentRecord> GetDeployment(const std::string& workspace_id, const std::string& id);
  Result<DeploymentRecord> GetDeploymentById(const std::string& id);
  Result<std::vector<DeploymentRecord>> ListDeployments(const std::string& workspace_id,
                                                        const std::string& project_name,
                                                        int limit);
  // Every deployment whose instances should be serving now (READY, not stopped by the retention
  // policy), of every workspace: what the instance monitor follows on krane.
  struct ServingDeployment {
    std::string id;
    std::string workspace_id;
  };
  Result<std::vector<ServingDeployment>> ServingDeployments();
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
  // The deployment an environment of the project serves now; empty when none does.
  Result<std::string> LiveDeployment(const std::string& project_id, const std::string& environment);
  // Removes every host the deployment holds, and its place as an environment's live deployment.
  Status ReleaseDomains(const std::string& deployment_id);
  // How many deployments (not deleted) other than except_deployment, and standalone builds, use
  // the context key.
  Result<int64_t> ContextUsers(const std::string& context_key, const std::string& except_deployment);
  Status MarkDeploymentDeleted(const std::string& id);

  // Retention: the project's deployments as the policy sees them, the contexts of its
  // standalone builds, and what a run changes.
  Result<std::vector<RetentionCandidate>> RetentionCandidates(const std::string& project_id);
  Result<std::set<std::string>> StandaloneBuildContexts(const std::string& project_id);
  Status MarkStopped(const std::string& deployment_id, bool stopped);
  Status MarkContextDeleted(const std::string& project_id, const std::string& context_key);
  Result<std::vector<std::string>> ProjectsWithDeployments();

  Status SaveOpenApiSpec(const OpenApiSpecRecord& spec);
  // NotFound when the deployment is not in the workspace or has no spec.
  Result<OpenApiSpecRecord> GetOpenApiSpec(const std::string& workspace_id,
                                           const std::string& deployment_id);

  // Unscoped, for the workflow: nullopt when the deployment has no spec.
  Result<std::optional<OpenApiSpecRecord>> FindOpenApiSpec(const std::string& deployment_id);
  // A deployment's contract check; a default record (nothing asked, nothing checked) when none
  // was saved. Implemented in store_openapi.cc.
  Result<OpenApiCheckRecord> GetOpenApiCheck(const std::string& deployment_id);
  Status SaveOpenApiCheck(const OpenApiCheckRecord& check);

  int64_t NowMs() const;
  // A committed change of deployment or build `id` (or its failure, passed through), announced
  // to its watchers (db::kDeploymentChangedTopic) in this process and, with PostgreSQL, in others.
  Status Announced(const std::string& id, Status committed);

 private:
  Result<DeploymentRecord> LoadDeployment(const std::string& where, const db::Params& params);

  db::Database& db_;
  Clock& clock_;
};

}  // namespace slipway::ctrl
