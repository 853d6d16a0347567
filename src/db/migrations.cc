#include "db/migrations.h"

#include <algorithm>
#include <chrono>

namespace slipway::db {
namespace {

// Column conventions (portable between SQLite and PostgreSQL): ids are TEXT chosen by the
// application, times are BIGINT unix milliseconds, booleans INTEGER 0/1, lists are JSON text.
constexpr std::string_view kMainV1 = R"sql(
CREATE TABLE workspaces (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL
);

CREATE TABLE projects (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  UNIQUE (workspace_id, name)
);

CREATE TABLE environments (
  id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  UNIQUE (project_id, name)
);

CREATE TABLE api_tokens (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  token_sha256 TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  last_used_at BIGINT
);
CREATE INDEX api_tokens_workspace ON api_tokens (workspace_id);

CREATE TABLE deployments (
  id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  environment_id TEXT NOT NULL REFERENCES environments(id),
  branch TEXT NOT NULL DEFAULT '',
  git_commit_sha TEXT NOT NULL DEFAULT '',
  git_commit_message TEXT NOT NULL DEFAULT '',
  git_commit_author TEXT NOT NULL DEFAULT '',
  source_context_key TEXT,
  source_dockerfile TEXT,
  source_image TEXT,
  status TEXT NOT NULL,
  error_message TEXT,
  failed_step TEXT,
  image TEXT,
  replicas BIGINT NOT NULL DEFAULT 1,
  cpu_millicores BIGINT NOT NULL DEFAULT 0,
  memory_mib BIGINT NOT NULL DEFAULT 0,
  port BIGINT NOT NULL DEFAULT 8080,
  hostnames TEXT NOT NULL DEFAULT '[]',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX deployments_project_created ON deployments (project_id, created_at);
CREATE INDEX deployments_environment_created ON deployments (environment_id, created_at);

CREATE TABLE deployment_steps (
  deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  position BIGINT NOT NULL DEFAULT 0,
  status TEXT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT,
  error TEXT,
  PRIMARY KEY (deployment_id, name)
);

CREATE TABLE builds (
  id TEXT PRIMARY KEY,
  deployment_id TEXT REFERENCES deployments(id) ON DELETE SET NULL,
  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  context_key TEXT NOT NULL,
  dockerfile TEXT NOT NULL,
  build_args TEXT NOT NULL DEFAULT '{}',
  platform TEXT NOT NULL DEFAULT 'linux/amd64',
  status TEXT NOT NULL,
  image TEXT,
  error TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  finished_at BIGINT
);
CREATE INDEX builds_deployment ON builds (deployment_id);
CREATE INDEX builds_project_created ON builds (project_id, created_at);

CREATE TABLE build_log_lines (
  build_id TEXT NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
  seq BIGINT NOT NULL,
  logged_at BIGINT NOT NULL,
  line TEXT NOT NULL,
  PRIMARY KEY (build_id, seq)
);

CREATE TABLE workflow_runs (
  id TEXT PRIMARY KEY,
  workflow TEXT NOT NULL,
  workflow_key TEXT NOT NULL,
  key_seq BIGINT NOT NULL,
  input TEXT NOT NULL,
  status TEXT NOT NULL,
  output TEXT,
  error_code TEXT,
  error TEXT,
  owner TEXT,
  lease_until BIGINT NOT NULL DEFAULT 0,
  claims BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  finished_at BIGINT,
  UNIQUE (workflow_key, key_seq)
);
CREATE INDEX workflow_runs_status_created ON workflow_runs (status, created_at);

CREATE TABLE workflow_steps (
  run_id TEXT NOT NULL REFERENCES workflow_runs(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  status TEXT NOT NULL,
  output TEXT,
  error_code TEXT,
  error TEXT,
  attempts BIGINT NOT NULL DEFAULT 0,
  retry_at BIGINT,
  started_at BIGINT NOT NULL,
  finished_at BIGINT,
  PRIMARY KEY (run_id, name)
);
)sql";

// Version 2: the deployment columns the control plane records (build, build args, health
// check, environment variables), the domains each deployment holds, and scraped OpenAPI specs.
// A domain row names the deployment its host points at now; it moves with the gateway route.
constexpr std::string_view kMainV2 = R"sql(
ALTER TABLE deployments ADD COLUMN build_id TEXT;
ALTER TABLE deployments ADD COLUMN build_args TEXT NOT NULL DEFAULT '{}';
ALTER TABLE deployments ADD COLUMN health_check_path TEXT NOT NULL DEFAULT '';
ALTER TABLE deployments ADD COLUMN env TEXT NOT NULL DEFAULT '{}';

CREATE TABLE domains (
  hostname TEXT PRIMARY KEY,
  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX domains_deployment ON domains (deployment_id);
CREATE INDEX domains_project ON domains (project_id);

CREATE TABLE openapi_specs (
  deployment_id TEXT PRIMARY KEY REFERENCES deployments(id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  content_type TEXT NOT NULL,
  spec TEXT NOT NULL,
  scraped_at BIGINT NOT NULL
);
)sql";

// Version 3: the Dockerfile stage a build targets (platform already names one or several
// platforms, comma-separated).
constexpr std::string_view kMainV3 = R"sql(
ALTER TABLE builds ADD COLUMN target TEXT NOT NULL DEFAULT '';
)sql";

// Version 4: which deployment each environment of a project serves now (its environment host
// points there; rollback and promote move it), filled from the environment hosts already
// routed; and builds asked to ignore every cache (redeploy --no-cache).
constexpr std::string_view kMainV4 = R"sql(
CREATE TABLE live_deployments (
  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  environment TEXT NOT NULL,
  deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (project_id, environment)
);
CREATE INDEX live_deployments_deployment ON live_deployments (deployment_id);
INSERT INTO live_deployments (project_id, environment, deployment_id, updated_at)
  SELECT dm.project_id, e.name, dm.deployment_id, dm.updated_at
  FROM domains dm JOIN deployments d ON d.id = dm.deployment_id
  JOIN environments e ON e.id = d.environment_id
  WHERE dm.kind = 'environment';
ALTER TABLE builds ADD COLUMN no_cache BIGINT NOT NULL DEFAULT 0;
)sql";

// Version 5: what the retention policy needs to know of a deployment: when it stopped being
// live, when its instances were stopped, when its context was deleted.
constexpr std::string_view kMainV5 = R"sql(
ALTER TABLE deployments ADD COLUMN superseded_at BIGINT;
ALTER TABLE deployments ADD COLUMN stopped_at BIGINT;
ALTER TABLE deployments ADD COLUMN context_deleted_at BIGINT;
)sql";

// Version 6: which build backend made a build's image, so an unchanged redeploy may reuse an
// image only the same backend made.
constexpr std::string_view kMainV6 = R"sql(
ALTER TABLE builds ADD COLUMN backend TEXT NOT NULL DEFAULT '';
CREATE INDEX builds_reuse ON builds (project_id, context_key, status);
)sql";

// Version 7: the depot build backend's records: the Depot project of a project, the Depot
// build open for a build (finished by the next attempt when its ctrl died).
constexpr std::string_view kMainV7 = R"sql(
ALTER TABLE projects ADD COLUMN depot_project_id TEXT NOT NULL DEFAULT '';
ALTER TABLE builds ADD COLUMN depot_build_id TEXT NOT NULL DEFAULT '';
ALTER TABLE builds ADD COLUMN depot_build_token TEXT NOT NULL DEFAULT '';
)sql";

// Version 8: the OpenAPI contract check of each deployment: whether its creator asked to hold
// back a deployment with breaking changes, the live deployment its spec was compared with, and
// the outcome.
constexpr std::string_view kMainV8 = R"sql(
CREATE TABLE openapi_checks (
  deployment_id TEXT PRIMARY KEY REFERENCES deployments(id) ON DELETE CASCADE,
  fail_on_breaking INTEGER NOT NULL DEFAULT 0,
  checked INTEGER NOT NULL DEFAULT 0,
  base_deployment_id TEXT NOT NULL DEFAULT '',
  has_breaking INTEGER NOT NULL DEFAULT 0,
  held_back INTEGER NOT NULL DEFAULT 0,
  note TEXT NOT NULL DEFAULT '',
  updated_at BIGINT NOT NULL
);
)sql";

// API tokens get a scope (deploy: everything; read: look, change nothing), an optional expiry
// and a revocation time; the tokens issued before keep the full scope and never expire.
constexpr std::string_view kMainV9 = R"sql(
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'deploy';
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN revoked_at BIGINT;
)sql";

// A project's environment variables (environment '' applies to every environment; a named one
// overrides it). A secret's value is AES-256-GCM ciphertext ("aesgcm1:<base64>"), never
// plaintext. Builds count the bytes of their stored log, so the cap holds across a resumed build.
constexpr std::string_view kMainV10 = R"sql(
CREATE TABLE env_vars (
  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  environment TEXT NOT NULL DEFAULT '',
  name TEXT NOT NULL,
  secret INTEGER NOT NULL DEFAULT 0,
  value TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (project_id, environment, name)
);
ALTER TABLE builds ADD COLUMN log_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE builds ADD COLUMN log_truncated INTEGER NOT NULL DEFAULT 0;
)sql";

constexpr std::string_view kPartitionV1 = R"sql(
CREATE TABLE instances (
  deployment_id TEXT NOT NULL,
  instance_id TEXT NOT NULL,
  address TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (deployment_id, instance_id)
);
CREATE INDEX instances_status ON instances (status);

CREATE TABLE gateway_routes (
  hostname TEXT PRIMARY KEY,
  deployment_id TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX gateway_routes_deployment ON gateway_routes (deployment_id);
)sql";

// Each running gateway records when it began the load of the routing table it now serves, so
// ctrl can tell when a route change has reached every gateway (a deployment is READY only once
// its URLs answer from it).
constexpr std::string_view kPartitionV2 = R"sql(
CREATE TABLE gateway_loads (
  gateway_id TEXT PRIMARY KEY,
  loaded_at BIGINT NOT NULL
);
)sql";

// Version 3: a host whose deployment's instances the retention policy stopped answers 503 saying
// how to start it again, rather than "no ready instance".
constexpr std::string_view kPartitionV3 = R"sql(
ALTER TABLE gateway_routes ADD COLUMN stopped BIGINT NOT NULL DEFAULT 0;
)sql";

// Any fixed number: every slipway process migrating the same PostgreSQL database takes it.
constexpr int64_t kMigrationLockKey = 0x5117'3a11;

constexpr std::string_view kCreateSchemaMigrations =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

int64_t UnixMillis(Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.Now().time_since_epoch())
      .count();
}

// Serializes migrating processes for the rest of the transaction; SQLite's BEGIN IMMEDIATE
// already did.
Status LockForMigration(Executor& tx) {
  if (tx.dialect() != Dialect::kPostgres) return Status::Ok();
  return tx.Query("SELECT pg_advisory_xact_lock($1)", {kMigrationLockKey}).status();
}

}  // namespace

const std::vector<Migration>& MigrationsFor(Schema schema) {
  static const std::vector<Migration> kMain = {
      {1,
       "initial schema: workspaces, projects, deployments, builds, workflow journal",
       kMainV1,
       {}},
      {2, "deployment build, env and health check columns; domains; openapi specs", kMainV2, {}},
      {3, "build target stage", kMainV3, {}},
      {4, "live deployment per environment; builds without cache", kMainV4, {}},
      {5, "retention: superseded, stopped, context deleted", kMainV5, {}},
      {6, "the backend that built each build", kMainV6, {}},
      {7, "depot backend: the Depot project of a project, the Depot build open for a build",
       kMainV7, {}},
      {8, "openapi contract checks", kMainV8, {}},
      {9, "token scopes, expiry and revocation", kMainV9, {}},
      {10, "environment variables and secrets; build log sizes", kMainV10, {}},
  };
  static const std::vector<Migration> kPartition = {
      {1, "initial schema: instances, gateway routes", kPartitionV1, {}},
      {2, "gateway loads: when each gateway last loaded its routes", kPartitionV2, {}},
      {3, "routes of deployments the retention policy stopped", kPartitionV3, {}},
  };
  return schema == Schema::kMain ? kMain : kPartition;
}

Status Migrate(Database& db, const std::vector<Migration>& migrations, Clock& clock) {
  int known = 0;
  for (const auto& m : migrations) known = std::max(known, m.version);

  SLIPWAY_RETURN_IF_ERROR(db.WithTransaction(
      [&](Executor& tx) -> Status {
        SLIPWAY_RETURN_IF_ERROR(LockForMigration(tx));
        SLIPWAY_RETURN_IF_ERROR(tx.ExecScript(kCreateSchemaMigrations));
        SLIPWAY_ASSIGN_OR_RETURN(auto row,
                                 tx.QueryRow("SELECT MAX(version) AS v FROM schema_migrations"));
        int64_t newest = row ? (*row)["v"].AsInt() : 0;
        if (newest > known) {
          return Status::FailedPrecondition(
              "the database " + db.Describe() + " has schema version " + std::to_string(newest) +
              " but this slipway knows versions up to " + std::to_string(known) +
              "; run a slipway at least as new as the one that migrated it.");
        }
        return Status::Ok();
      },
      Isolation::kReadCommitted));

  std::vector<const Migration*> ordered;
  for (const auto& m : migrations) ordered.push_back(&m);
  std::sort(ordered.begin(), ordered.end(),
            [](const Migration* a, const Migration* b) { return a->version < b->version; });

  for (const Migration* m : ordered) {
    Status s = db.WithTransaction(
        [&](Executor& tx) -> Status {
          SLIPWAY_RETURN_IF_ERROR(LockForMigration(tx));
          SLIPWAY_ASSIGN_OR_RETURN(
              auto applied, tx.QueryRow("SELECT version FROM schema_migrations WHERE version = $1",
                                        {m->version}));
          if (applied) return Status::Ok();  // another process got here first
          std::string_view sql = tx.dialect() == Dialect::kPostgres && !m->postgres_sql.empty()
                                     ? m->postgres_sql
                                     : m->sql;
          SLIPWAY_RETURN_IF_ERROR(tx.ExecScript(sql));
          return tx
              .Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    {m->version, m->name, UnixMillis(clock)})
              .status();
        },
        Isolation::kReadCommitted);
    if (!s.ok()) {
      return s.WithContext("applying migration " + std::to_string(m->version) + " (" +
                           std::string(m->name) + ") to " + db.Describe());
    }
  }
  return Status::Ok();
}

namespace {

Result<std::unique_ptr<Database>> OpenAndMigrate(std::string_view url, const OpenOptions& options,
                                                 Schema schema) {
  SLIPWAY_ASSIGN_OR_RETURN(auto db, Open(url, options));
  SLIPWAY_RETURN_IF_ERROR(Migrate(*db, MigrationsFor(schema)));
  return db;
}

}  // namespace

Result<std::unique_ptr<Database>> OpenMain(std::string_view url, const OpenOptions& options) {
  return OpenAndMigrate(url, options, Schema::kMain);
}

Result<std::unique_ptr<Database>> OpenPartition(std::string_view url, const OpenOptions& options) {
  return OpenAndMigrate(url, options, Schema::kPartition);
}

}  // namespace slipway::db
