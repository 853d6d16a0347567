#include "ctrl/store.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "base/ids.h"
#include "db/change_notices.h"

namespace slipway::ctrl {
namespace {

using Json = nlohmann::json;

std::string MapToJson(const std::map<std::string, std::string>& m) { return Json(m).dump(); }

std::map<std::string, std::string> MapFromJson(const std::string& s) {
  Json j = Json::parse(s, nullptr, false);
  std::map<std::string, std::string> out;
  if (!j.is_object()) return out;
  for (auto& [k, v] : j.items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

std::vector<std::string> ListFromJson(const std::string& s) {
  Json j = Json::parse(s, nullptr, false);
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (auto& v : j) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

// Steps are recorded in the order the workflow announces them.
constexpr std::string_view kBuildColumns =
    "b.id, b.project_id, p.name AS project_name, b.deployment_id, b.context_key, b.dockerfile, "
    "b.build_args, b.platform, b.target, b.no_cache, b.status, b.image, b.error, b.created_at, b.finished_at";

BuildRecord BuildFromRow(const db::Row& r) {
  BuildRecord b;
  b.id = r["id"].AsText();
  b.project_id = r["project_id"].AsText();
  b.project_name = r["project_name"].AsText();
  b.deployment_id = r["deployment_id"].AsText();
  b.context_key = r["context_key"].AsText();
  b.dockerfile = r["dockerfile"].AsText();
  b.build_args = MapFromJson(r["build_args"].AsText());
  b.platform = r["platform"].AsText();
  b.target = r["target"].AsText();
  b.no_cache = r["no_cache"].AsInt() != 0;
  b.status = r["status"].AsText();
  b.image = r["image"].AsText();
  b.error = r["error"].AsText();
  b.created_at_ms = r["created_at"].AsInt();
  b.finished_at_ms = r["finished_at"].AsInt();
  return b;
}

constexpr std::string_view kDeploymentColumns =
    "d.id, d.project_id, p.name AS project_name, p.workspace_id, e.name AS environment, d.branch, "
    "d.git_commit_sha, d.git_commit_message, d.git_commit_author, d.source_context_key, "
    "d.source_dockerfile, d.source_image, d.build_args, d.status, d.error_message, d.failed_step, "
    "d.image, d.build_id, d.replicas, d.cpu_millicores, d.memory_mib, d.port, "
    "d.health_check_path, d.env, d.hostnames, d.created_at, d.updated_at, d.stopped_at, "
    "(SELECT COUNT(*) FROM openapi_specs o WHERE o.deployment_id = d.id) AS openapi_specs";

}  // namespace

int64_t Store::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
      .count();
}

Status Store::Announced(const std::string& id, Status committed) {
  if (committed.ok()) db::NotifyChange(db_, db::kDeploymentChangedTopic, id);
  return committed;
}

std::unique_ptr<db::ChangeSubscription> Store::SubscribeToChanges(
    std::function<void(std::string_view id)> on_change) {
  return db::SubscribeToChanges(db_, db::kDeploymentChangedTopic, std::move(on_change));
}

Result<std::string> Store::EnsureWorkspace(const std::string& name) {
  SLIPWAY_RETURN_IF_ERROR(
      db_.Exec("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3) "
               "ON CONFLICT (name) DO NOTHING",
               {NewId("ws"), name, NowMs()})
          .status());
  SLIPWAY_ASSIGN_OR_RETURN(auto row, db_.QueryRow("SELECT id FROM workspaces WHERE name = $1", {name}));
  if (!row) return Status::Internal("workspace " + name + " vanished right after it was created");
  return (*row)["id"].AsText();
}

Result<Project> Store::EnsureProject(const std::string& workspace_id, const std::string& name) {
  Project project;
  Status st = db_.WithTransaction([&](db::Executor& tx) -> Status {
    SLIPWAY_ASSIGN_OR_RETURN(auto row, tx.QueryRow("SELECT id FROM projects WHERE workspace_id = $1 "
                                                   "AND name = $2",
                                                   {workspace_id, name}));
    if (row) {
      project = {(*row)["id"].AsText(), workspace_id, name};
      return Status::Ok();
    }
    project = {NewId("prj"), workspace_id, name};
    int64_t now = NowMs();
    SLIPWAY_RETURN_IF_ERROR(tx.Exec("INSERT INTO projects (id, workspace_id, name, created_at) "
                                    "VALUES ($1, $2, $3, $4)",
                                    {project.id, workspace_id, name, now})
                                .status());
    for (const char* env : {"production", "preview"}) {
      SLIPWAY_RETURN_IF_ERROR(tx.Exec("INSERT INTO environments (id, project_id, name, created_at) "
                                      "VALUES ($1, $2, $3, $4)",
                                      {NewId("env"), project.id, env, now})
                                  .status());
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return project;
}

Result<std::optional<Project>> Store::FindProject(const std::string& workspace_id,
                                                  const std::string& name) {
  SLIPWAY_ASSIGN_OR_RETURN(auto row, db_.QueryRow("SELECT id FROM projects WHERE workspace_id = $1 "
                                                  "AND name = $2",
                                                  {workspace_id, name}));
  if (!row) return std::optional<Project>();
  return std::optional<Project>(Project{(*row)["id"].AsText(), workspace_id, name});
}

namespace {

constexpr std::string_view kActiveBuildsOfWorkspace =
    "SELECT COUNT(*) AS n FROM builds b JOIN projects p ON p.id = b.project_id "
    "WHERE p.workspace_id = $1 AND b.status IN ('queued', 'running')";

}  // namespace

Result<int64_t> Store::ActiveBuilds(const std::string& workspace_id) {
  SLIPWAY_ASSIGN_OR_RETURN(auto row, db_.QueryRow(kActiveBuildsOfWorkspace, {workspace_id}));
  return row ? (*row)["n"].AsInt() : 0;
}

Status Store::InsertBuild(const BuildRecord& b, int64_t max_active_in_workspace) {
  int64_t now = NowMs();
  // Counting and inserting in one serializable transaction: two builds asked for at the same
  // moment cannot both take the last place.
  return db_.WithTransaction([&](db::Executor& tx) -> Status {
    if (max_active_in_workspace > 0) {
      SLIPWAY_ASSIGN_OR_RETURN(auto ws, tx.QueryRow("SELECT workspace_id FROM projects WHERE id = $1",
                                                    {b.project_id}));
      if (!ws) return Status::NotFound("no project " + b.project_id);
      SLIPWAY_ASSIGN_OR_RETURN(auto row, tx.QueryRow(kActiveBuildsOfWorkspace,
                                                     {(*ws)["workspace_id"].AsText()}));
      const int64_t active = row ? (*row)["n"].AsInt() : 0;
      if (active >= max_active_in_workspace) return TooManyBuilds(active, max_active_in_workspace);
    }
    return tx
        .Exec("INSERT INTO builds (id, deployment_id, project_id, context_key, dockerfile, "
              "build_args, platform, target, no_cache, status, created_at, updated_at) "
              "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', $10, $10)",
              {b.id, b.deployment_id.empty() ? db::Value() : db::Value(b.deployment_id),
               b.project_id, b.context_key, b.dockerfile, MapToJson(b.build_args), b.platform,
               b.target, static_cast<int64_t>(b.no_cache ? 1 : 0), now})
        .status();
  });
}

Status TooManyBuilds(int64_t active, int64_t limit) {
  return Status::ResourceExhausted(fmt::format(
      "this workspace already has {} build(s) queued or running, and this control plane allows "
      "{} at once per workspace: wait for one to finish (`slipway list` shows them), or ask the "
      "operator to raise --max-concurrent-builds",
      active, limit));
}

Result<BuildRecord> Store::GetBuild(const std::string& workspace_id, const std::string& build_id) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto row, db_.QueryRow(fmt::format("SELECT {} FROM builds b JOIN projects p ON p.id = "
                                         "b.project_id WHERE b.id = $1 AND p.workspace_id = $2",
                                         kBuildColumns),
                             {build_id, workspace_id}));
  if (!row) return Status::NotFound("no build " + build_id + " in this workspace");
  return BuildFromRow(*row);
}

Result<BuildRecord> Store::GetBuildById(const std::string& build_id) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto row, db_.QueryRow(fmt::format("SELECT {} FROM builds b JOIN projects p ON p.id = "
                                         "b.project_id WHERE b.id = $1",
                                         kBuildColumns),
                             {build_id}));
  if (!row) return Status::NotFound("no build " + build_id);
  return BuildFromRow(*row);
}

Result<std::string> Store::GetDepotProjectId(const std::string& project_id) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto row, db_.QueryRow("SELECT depot_project_id FROM projects WHERE id = $1", {project_id}));
  if (!row) return Status::NotFound("no project " + project_id);
  return (*row)["depot_project_id"].AsText();
}

Result<std::string> Store::SetDepotProjectIdOnce(const std::string& project_id,
                                                 const std::string& depot_project_id) {
  SLIPWAY_RETURN_IF_ERROR(db_.Exec("UPDATE projects SET depot_project_id = $2 WHERE id = $1 AND "
                                   "depot_project_id = ''",
                                   {project_id, depot_project_id})
                              .status());
  return GetDepotProjectId(project_id);
}

Result<std::pair<std::string, std::string>> Store::GetOpenDepotBuild(const std::string& build_id) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto row, db_.QueryRow("SELECT depot_build_id, depot_build_token FROM builds WHERE id = $1",
                             {build_id}));
  if (!row) return Status::NotFound("no build " + build_id);
  return std::make_pair((*row)["depot_build_id"].AsText(), (*row)["depot_build_token"].AsText());
}

Status Store::SetOpenDepotBuild(const std::string& build_id, const std::string& depot_build_id,
                                const std::string& build_token) {
  return db_
      .Exec("UPDATE builds SET depot_build_id = $2, depot_build_token = $3 WHERE id = $1",
            {build_id, depot_build_id, build_token})
      .status();
}

Status Store::SetBuildRunning(const std::string& build_id) {
  return Announced(build_id,
                   db_.Exec("UPDATE builds SET status = 'running', updated_at = $2 WHERE id = $1",
                            {build_id, NowMs()})
                       .status());
}

Status Store::FinishBuild(const std::string& build_id, const std::string& image,
                          const Status& result) {
  int64_t now = NowMs();
  return Announced(
      build_id, db_.Exec("UPDATE builds SET status = $2, image = $3, error = $4, updated_at = $5, "
                         "finished_at = $5 WHERE id = $1",
                         {build_id, result.ok() ? "succeeded" : "failed",
                          image.empty() ? db::Value() : db::Value(image),
                          result.ok() ? db::Value() : db::Value(result.message()), now})
                    .status());
}

Status Store::SetBuildBackend(const std::string& build_id, const std::string& backend) {
  return db_.Exec("UPDATE builds SET backend = $2 WHERE id = $1", {build_id, backend}).status();
}

Result<std::optional<BuildRecord>> Store::ReusableBuild(const BuildRecord& b,
                                                        const std::string& backend) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto row,
      db_.QueryRow(fmt::format("SELECT {} FROM builds b JOIN projects p ON p.id = b.project_id "
                               "WHERE b.project_id = $1 AND b.context_key = $2 AND "
                               "b.dockerfile = $3 AND b.build_args = $4 AND b.platform = $5 AND "
                               "b.target = $6 AND b.backend = $7 AND b.status = 'succeeded' AND "
                               "b.image IS NOT NULL AND b.id <> $8 "
                               "ORDER BY b.finished_at DESC LIMIT 1",
                               kBuildColumns),
                   {b.project_id, b.context_key, b.dockerfile, MapToJson(b.build_args), b.platform,
                    b.target, backend, b.id}));
  if (!row) return std::optional<BuildRecord>();
  return std::optional<BuildRecord>(BuildFromRow(*row));
}

Status Store::AppendBuildLog(const std::string& build_id, const std::vector<std::string>& lines,
                             uint64_t max_bytes) {
  if (lines.empty()) return Status::Ok();
  return Announced(build_id, db_.WithTransaction([&](db::Executor& tx) -> Status {
    SLIPWAY_ASSIGN_OR_RETURN(auto row, tx.QueryRow("SELECT COALESCE(MAX(seq), 0) AS last FROM "
                                                   "build_log_lines WHERE build_id = $1",
                                                   {build_id}));
    int64_t seq = row ? (*row)["last"].AsInt() : 0;
    SLIPWAY_ASSIGN_OR_RETURN(auto size, tx.QueryRow("SELECT log_bytes, log_truncated FROM builds "
                                                    "WHERE id = $1",
                                                    {build_id}));
    if (size && (*size)["log_truncated"].AsInt() != 0) return Status::Ok();
    uint64_t stored = size ? static_cast<uint64_t>((*size)["log_bytes"].AsInt()) : 0;
    bool truncated = false;
    int64_t now = NowMs();
    for (const auto& line : lines) {
      if (max_bytes > 0 && stored + line.size() > max_bytes) {
        truncated = true;
        break;
      }
      SLIPWAY_RETURN_IF_ERROR(tx.Exec("INSERT INTO build_log_lines (build_id, seq, logged_at, line) "
                                      "VALUES ($1, $2, $3, $4)",
                                      {build_id, ++seq, now, line})
                                  .status());
      stored += line.size();
    }
    if (truncated) {
      SLIPWAY_RETURN_IF_ERROR(
          tx.Exec("INSERT INTO build_log_lines (build_id, seq, logged_at, line) "
                  "VALUES ($1, $2, $3, $4)",
                  {build_id, ++seq, now,
                   fmt::format("[slipway] the build log is truncated here: it reached this "
                               "control plane's limit of {} bytes per build "
                               "(--max-build-log-bytes); the build goes on, its further output "
                               "is not stored",
                               max_bytes)})
              .status());
    }
    return tx
        .Exec("UPDATE builds SET log_bytes = $2, log_truncated = $3 WHERE id = $1",
              {build_id, static_cast<int64_t>(stored), static_cast<int64_t>(truncated ? 1 : 0)})
        .status();
  }));
}

Result<std::vector<LogLineRecord>> Store::ReadBuildLog(const std::string& build_id, int64_t after,
                                                       int limit) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT seq, logged_at, line FROM build_log_lines WHERE build_id = $1 "
                           "AND seq > $2 ORDER BY seq LIMIT $3",
                           {build_id, after, limit}));
  std::vector<LogLineRecord> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back({r["seq"].AsInt(), r["logged_at"].AsInt(), r["line"].AsText()});
  return out;
}

Status Store::InsertDeployment(const DeploymentRecord& d, const std::vector<std::string>& steps) {
  return Announced(d.id, db_.WithTransaction([&](db::Executor& tx) -> Status {
    SLIPWAY_ASSIGN_OR_RETURN(auto env, tx.QueryRow("SELECT id FROM environments WHERE project_id = "
                                                   "$1 AND name = $2",
                                                   {d.project_id, d.environment}));
    if (!env) {
      return Status::InvalidArgument(fmt::format(
          "project {} has no environment \"{}\" (use production or preview)", d.project_name,
          d.environment));
    }
    int64_t now = NowMs();
    auto opt = [](const std::string& s) { return s.empty() ? db::Value() : db::Value(s); };
    SLIPWAY_RETURN_IF_ERROR(
        tx.Exec("INSERT INTO deployments (id, project_id, environment_id, branch, git_commit_sha, "
                "git_commit_message, git_commit_author, source_context_key, source_dockerfile, "
                "source_image, build_args, status, replicas, cpu_millicores, memory_mib, port, "
                "health_check_path, env, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, "
                "$7, $8, $9, $10, $11, 'PENDING', $12, $13, $14, $15, $16, $17, $18, $18)",
                {d.id, d.project_id, (*env)["id"].AsText(), d.branch, d.git_commit_sha,
                 d.git_commit_message, d.git_commit_author, opt(d.context_key), opt(d.dockerfile),
                 opt(d.source_image), MapToJson(d.build_args), d.replicas, d.cpu_millicores,
                 d.memory_mib, d.port, d.health_check_path, MapToJson(d.env), now})
            .status());
    int position = 0;
    for (const auto& step : steps) {
      SLIPWAY_RETURN_IF_ERROR(tx.Exec("INSERT INTO deployment_steps (deployment_id, name, position, "
                                      "status) VALUES ($1, $2, $3, 'pending')",
                                      {d.id, step, position++})
                                  .status());
    }
    return Status::Ok();
  }));
}

Result<DeploymentRecord> Store::LoadDeployment(const std::string& where, const db::Params& params) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto row, db_.QueryRow(fmt::format("SELECT {} FROM deployments d JOIN projects p ON p.id = "
                                         "d.project_id JOIN environments e ON e.id = "
                                         "d.environment_id WHERE {}",
                                         kDeploymentColumns, where),
                             params));
  if (!row) return Status::NotFound("no deployment " + params[0].AsText() + " in this workspace");
  const db::Row& r = *row;
  DeploymentRecord d;
  d.id = r["id"].AsText();
  d.project_id = r["project_id"].AsText();
  d.project_name = r["project_name"].AsText();
  d.workspace_id = r["workspace_id"].AsText();
  d.environment = r["environment"].AsText();
  d.branch = r["branch"].AsText();
  d.git_commit_sha = r["git_commit_sha"].AsText();
  d.git_commit_message = r["git_commit_message"].AsText();
  d.git_commit_author = r["git_commit_author"].AsText();
  d.context_key = r["source_context_key"].AsText();
  d.dockerfile = r["source_dockerfile"].AsText();
  d.source_image = r["source_image"].AsText();
  d.build_args = MapFromJson(r["build_args"].AsText());
  d.status = r["status"].AsText();
  d.error = r["error_message"].AsText();
  d.failed_step = r["failed_step"].AsText();
  d.image = r["image"].AsText();
  d.build_id = r["build_id"].AsText();
  d.replicas = r["replicas"].AsInt();
  d.cpu_millicores = r["cpu_millicores"].AsInt();
  d.memory_mib = r["memory_mib"].AsInt();
  d.port = r["port"].AsInt();
  d.health_check_path = r["health_check_path"].AsText();
  d.env = MapFromJson(r["env"].AsText());
  d.hostnames = ListFromJson(r["hostnames"].AsText());
  d.has_openapi_spec = r["openapi_specs"].AsInt() > 0;
  d.created_at_ms = r["created_at"].AsInt();
  d.updated_at_ms = r["updated_at"].AsInt();
  d.stopped_at_ms = r["stopped_at"].AsInt();
  SLIPWAY_ASSIGN_OR_RETURN(auto steps, db_.Query("SELECT name, status, started_at, finished_at, "
                                                 "error FROM deployment_steps WHERE "
                                                 "deployment_id = $1 ORDER BY position",
                                                 {d.id}));
  for (const auto& s : steps) {
    d.steps.push_back({s["name"].AsText(), s["status"].AsText(), s["started_at"].AsInt(),
                       s["finished_at"].AsInt(), s["error"].AsText()});
  }
  SLIPWAY_ASSIGN_OR_RETURN(auto live, db_.Query("SELECT environment FROM live_deployments WHERE "
                                                "deployment_id = $1 ORDER BY environment",
                                                {d.id}));
  for (const auto& l : live) d.live_environments.push_back(l["environment"].AsText());
  return d;
}

Result<DeploymentRecord> Store::GetDeployment(const std::string& workspace_id, const std::string& id) {
  return LoadDeployment("d.id = $1 AND p.workspace_id = $2", {id, workspace_id});
}

Result<DeploymentRecord> Store::GetDeploymentById(const std::string& id) {
  return LoadDeployment("d.id = $1", {id});
}

Result<std::vector<DeploymentRecord>> Store::ListDeployments(const std::string& workspace_id,
                                                             const std::string& project_name,
                                                             int limit) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT d.id FROM deployments d JOIN projects p ON p.id = d.project_id "
                           "WHERE p.workspace_id = $1 AND ($2 = '' OR p.name = $2) "
                           "ORDER BY d.created_at DESC LIMIT $3",
                           {workspace_id, project_name, limit}));
  std::vector<DeploymentRecord> out;
  for (const auto& r : rows) {
    SLIPWAY_ASSIGN_OR_RETURN(auto d, GetDeploymentById(r["id"].AsText()));
    out.push_back(std::move(d));
  }
  return out;
}

Result<std::vector<Store::ServingDeployment>> Store::ServingDeployments() {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT d.id, p.workspace_id FROM deployments d "
                           "JOIN projects p ON p.id = d.project_id "
                           "WHERE d.status = 'READY' AND d.stopped_at IS NULL ORDER BY d.id"));
  std::vector<ServingDeployment> out;
  for (const auto& r : rows) out.push_back({r["id"].AsText(), r["workspace_id"].AsText()});
  return out;
}

Status Store::SetDeploymentStatus(const std::string& id, const std::string& status) {
  return Announced(id, db_.Exec("UPDATE deployments SET status = $2, updated_at = $3 WHERE id = $1",
                                {id, status, NowMs()})
                           .status());
}

Status Store::SetDeploymentImage(const std::string& id, const std::string& image,
                                 const std::string& build_id) {
  return Announced(
      id,
      db_.Exec("UPDATE deployments SET image = $2, build_id = $3, updated_at = $4 WHERE id = $1",
               {id, image, build_id.empty() ? db::Value() : db::Value(build_id), NowMs()})
          .status());
}

Status Store::SetDeploymentHostnames(const std::string& id, const std::vector<std::string>& hostnames) {
  return Announced(id,
                   db_.Exec("UPDATE deployments SET hostnames = $2, updated_at = $3 WHERE id = $1",
                            {id, Json(hostnames).dump(), NowMs()})
                       .status());
}

Status Store::FailDeployment(const std::string& id, const std::string& step, const std::string& error) {
  return Announced(
      id,
      db_.Exec("UPDATE deployments SET status = 'FAILED', failed_step = $2, error_message = $3, "
               "updated_at = $4 WHERE id = $1",
               {id, step, error, NowMs()})
          .status());
}

Status Store::StartStep(const std::string& deployment_id, const std::string& step) {
  return Announced(
      deployment_id,
      db_.Exec("UPDATE deployment_steps SET status = 'running', started_at = COALESCE(started_at, "
               "$3), error = NULL WHERE deployment_id = $1 AND name = $2",
               {deployment_id, step, NowMs()})
          .status());
}

Status Store::FinishStep(const std::string& deployment_id, const std::string& step,
                         const Status& result) {
  return Announced(deployment_id,
                   db_.Exec("UPDATE deployment_steps SET status = $3, finished_at = $4, error = $5 "
                            "WHERE deployment_id = $1 AND name = $2",
                            {deployment_id, step, result.ok() ? "succeeded" : "failed", NowMs(),
                             result.ok() ? db::Value() : db::Value(result.message())})
                       .status());
}

Status Store::ClaimDomains(const std::string& project_id, const std::string& deployment_id,
                           const std::vector<DomainClaim>& domains) {
  const int64_t now = NowMs();
  return Announced(deployment_id, db_.WithTransaction([&](db::Executor& tx) -> Status {
    for (const DomainClaim& d : domains) {
      SLIPWAY_ASSIGN_OR_RETURN(
          auto held,
          tx.QueryRow("SELECT project_id FROM domains WHERE hostname = $1", {d.hostname}));
      if (held && (*held)["project_id"].AsText() != project_id) {
        return Status::FailedPrecondition(fmt::format(
            "the host {} already belongs to another project (a project of the same name in "
            "another workspace); deploy under a different project name",
            d.hostname));
      }
      SLIPWAY_RETURN_IF_ERROR(
          tx.Exec("INSERT INTO domains (hostname, project_id, deployment_id, kind, created_at, "
                  "updated_at) VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (hostname) DO UPDATE "
                  "SET deployment_id = excluded.deployment_id, kind = excluded.kind, "
                  "updated_at = excluded.updated_at",
                  {d.hostname, project_id, deployment_id, d.kind, now})
              .status());
      if (!d.environment.empty()) {
        // The deployment this environment served until now is superseded from this moment:
        // the retention policy's grace period counts from here.
        SLIPWAY_RETURN_IF_ERROR(
            tx.Exec("UPDATE deployments SET superseded_at = $3 WHERE id IN (SELECT deployment_id "
                    "FROM live_deployments WHERE project_id = $1 AND environment = $2 AND "
                    "deployment_id <> $4)",
                    {project_id, d.environment, now, deployment_id})
                .status());
        SLIPWAY_RETURN_IF_ERROR(
            tx.Exec("UPDATE deployments SET superseded_at = NULL WHERE id = $1", {deployment_id})
                .status());
        SLIPWAY_RETURN_IF_ERROR(
            tx.Exec("INSERT INTO live_deployments (project_id, environment, deployment_id, "
                    "updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (project_id, environment) "
                    "DO UPDATE SET deployment_id = excluded.deployment_id, "
                    "updated_at = excluded.updated_at",
                    {project_id, d.environment, deployment_id, now})
                .status());
      }
    }
    return Status::Ok();
  }));
}

Result<std::string> Store::LiveDeployment(const std::string& project_id,
                                          const std::string& environment) {
  SLIPWAY_ASSIGN_OR_RETURN(auto row, db_.QueryRow("SELECT deployment_id FROM live_deployments "
                                                  "WHERE project_id = $1 AND environment = $2",
                                                  {project_id, environment}));
  if (!row) return std::string();
  return (*row)["deployment_id"].AsText();
}

Status Store::ReleaseDomains(const std::string& deployment_id) {
  return Announced(deployment_id, db_.WithTransaction([&](db::Executor& tx) -> Status {
    SLIPWAY_RETURN_IF_ERROR(
        tx.Exec("DELETE FROM domains WHERE deployment_id = $1", {deployment_id}).status());
    return tx.Exec("DELETE FROM live_deployments WHERE deployment_id = $1", {deployment_id})
        .status();
  }));
}

Result<int64_t> Store::ContextUsers(const std::string& context_key,
                                    const std::string& except_deployment) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto row,
      db_.QueryRow("SELECT (SELECT COUNT(*) FROM deployments WHERE source_context_key = $1 AND "
                   "id <> $2 AND status <> 'DELETED') + (SELECT COUNT(*) FROM builds WHERE "
                   "context_key = $1 AND deployment_id IS NULL) AS n",
                   {context_key, except_deployment}));
  return row ? (*row)["n"].AsInt() : 0;
}

Status Store::MarkDeploymentDeleted(const std::string& id) {
  return Announced(
      id, db_.Exec("UPDATE deployments SET status = 'DELETED', hostnames = '[]', updated_at = $2 "
                   "WHERE id = $1",
                   {id, NowMs()})
              .status());
}

Result<std::vector<RetentionCandidate>> Store::RetentionCandidates(const std::string& project_id) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT d.id, e.name AS environment, d.status, d.source_context_key, "
                "d.created_at, d.updated_at, d.superseded_at, d.stopped_at, d.context_deleted_at, "
                "(SELECT COUNT(*) FROM live_deployments l WHERE l.deployment_id = d.id) AS live "
                "FROM deployments d JOIN environments e ON e.id = d.environment_id "
                "WHERE d.project_id = $1",
                {project_id}));
  std::vector<RetentionCandidate> out;
  for (const auto& r : rows) {
    RetentionCandidate c;
    c.id = r["id"].AsText();
    c.environment = r["environment"].AsText();
    c.status = r["status"].AsText();
    c.context_key = r["source_context_key"].AsText();
    c.live = r["live"].AsInt() > 0;
    c.created_at_ms = r["created_at"].AsInt();
    c.updated_at_ms = r["updated_at"].AsInt();
    c.superseded_at_ms = r["superseded_at"].AsInt();
    c.stopped_at_ms = r["stopped_at"].AsInt();
    c.context_deleted_at_ms = r["context_deleted_at"].AsInt();
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::set<std::string>> Store::StandaloneBuildContexts(const std::string& project_id) {
  SLIPWAY_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT DISTINCT context_key FROM builds WHERE "
                                                "project_id = $1 AND deployment_id IS NULL",
                                                {project_id}));
  std::set<std::string> out;
  for (const auto& r : rows) out.insert(r["context_key"].AsText());
  return out;
}

Status Store::MarkStopped(const std::string& deployment_id, bool stopped) {
  return Announced(deployment_id,
                   db_.Exec("UPDATE deployments SET stopped_at = $2 WHERE id = $1",
                            {deployment_id, stopped ? db::Value(NowMs()) : db::Value()})
                       .status());
}

Status Store::MarkContextDeleted(const std::string& project_id, const std::string& context_key) {
  return db_
      .Exec("UPDATE deployments SET context_deleted_at = $3 WHERE project_id = $1 AND "
            "source_context_key = $2 AND context_deleted_at IS NULL",
            {project_id, context_key, NowMs()})
      .status();
}

Result<std::vector<std::string>> Store::ProjectsWithDeployments() {
  SLIPWAY_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT DISTINCT project_id FROM deployments "
                                                "ORDER BY project_id"));
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r["project_id"].AsText());
  return out;
}

Status Store::SaveOpenApiSpec(const OpenApiSpecRecord& s) {
  return Announced(
      s.deployment_id,
      db_.Exec("INSERT INTO openapi_specs (deployment_id, path, content_type, spec, scraped_at) "
               "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (deployment_id) DO UPDATE SET "
               "path = excluded.path, content_type = excluded.content_type, spec = excluded.spec, "
               "scraped_at = excluded.scraped_at",
               {s.deployment_id, s.path, s.content_type, s.spec,
                s.scraped_at_ms != 0 ? s.scraped_at_ms : NowMs()})
          .status());
}

Result<OpenApiSpecRecord> Store::GetOpenApiSpec(const std::string& workspace_id,
                                                const std::string& deployment_id) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto row, db_.QueryRow("SELECT o.deployment_id, o.path, o.content_type, o.spec, o.scraped_at "
                             "FROM openapi_specs o JOIN deployments d ON d.id = o.deployment_id "
                             "JOIN projects p ON p.id = d.project_id "
                             "WHERE o.deployment_id = $1 AND p.workspace_id = $2",
                             {deployment_id, workspace_id}));
  if (!row) {
    SLIPWAY_RETURN_IF_ERROR(GetDeployment(workspace_id, deployment_id).status());
    return Status::NotFound(
        fmt::format("deployment {} has no OpenAPI spec: the app served none at /openapi.yaml or "
                    "/openapi.json, or it is not running yet",
                    deployment_id));
  }
  const db::Row& r = *row;
  return OpenApiSpecRecord{r["deployment_id"].AsText(), r["path"].AsText(),
                           r["content_type"].AsText(), r["spec"].AsText(), r["scraped_at"].AsInt()};
}

}  // namespace slipway::ctrl
