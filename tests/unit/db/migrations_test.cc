// Schema migrations for the main and partition databases, on SQLite and PostgreSQL.
#include "db/migrations.h"

#include <gtest/gtest.h>

#include <thread>

#include "support/postgres.h"
#include "support/test_support.h"

namespace slipway::db {
namespace {

using testing::TestDriver;

class MigrationTest : public ::testing::TestWithParam<TestDriver> {
 protected:
  void SetUp() override { url_ = testing::FreshDatabaseUrl(GetParam(), dir_.path()); }

  int64_t Count(Database& db, std::string_view sql, const Params& params = {}) {
    auto row = db.QueryRow(sql, params);
    EXPECT_TRUE(row.ok() && row->has_value()) << row.status().ToString();
    return row.ok() && row->has_value() ? (**row)[0].AsInt() : -1;
  }

  testing::TempDir dir_;
  std::string url_;
};

TEST_P(MigrationTest, OpeningTwiceAppliesEachMigrationOnce) {
  {
    auto db = OpenMain(url_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    ASSERT_TRUE((*db)
                    ->Exec("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)",
                           {"ws_1", "acme", 1})
                    .ok());
  }
  auto db = OpenMain(url_);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_EQ(Count(**db, "SELECT COUNT(*) FROM schema_migrations"),
            static_cast<int64_t>(MigrationsFor(Schema::kMain).size()));
  // The data written after the first open survived the second.
  EXPECT_EQ(Count(**db, "SELECT COUNT(*) FROM workspaces"), 1);
  // Migrating again explicitly is a no-op too.
  ASSERT_TRUE(Migrate(**db, MigrationsFor(Schema::kMain)).ok());
  EXPECT_EQ(Count(**db, "SELECT COUNT(*) FROM schema_migrations"),
            static_cast<int64_t>(MigrationsFor(Schema::kMain).size()));
}

TEST_P(MigrationTest, MainSchemaHoldsTheControlPlanesTablesAndConstraints) {
  auto opened = OpenMain(url_);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Database& db = **opened;
  auto exec = [&](std::string_view sql, const Params& params) {
    auto n = db.Exec(sql, params);
    EXPECT_TRUE(n.ok()) << sql << ": " << n.status().ToString();
  };
  exec("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)", {"ws_1", "acme", 1});
  exec("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)", {"ws_2", "other", 1});
  exec("INSERT INTO projects (id, workspace_id, name, created_at) VALUES ($1, $2, $3, $4)",
       {"prj_1", "ws_1", "api", 1});
  // The same project name in another workspace is a different project ...
  exec("INSERT INTO projects (id, workspace_id, name, created_at) VALUES ($1, $2, $3, $4)",
       {"prj_2", "ws_2", "api", 1});
  // ... but not twice in one workspace.
  auto dup = db.Exec(
      "INSERT INTO projects (id, workspace_id, name, created_at) "
      "VALUES ($1, $2, $3, $4)",
      {"prj_3", "ws_1", "api", 1});
  EXPECT_EQ(dup.status().code(), Code::kAlreadyExists) << dup.status().ToString();
  // Foreign keys are enforced on both drivers.
  auto orphan = db.Exec(
      "INSERT INTO projects (id, workspace_id, name, created_at) "
      "VALUES ($1, $2, $3, $4)",
      {"prj_4", "ws_none", "x", 1});
  EXPECT_EQ(orphan.status().code(), Code::kFailedPrecondition) << orphan.status().ToString();

  for (const char* env : {"production", "preview"}) {
    exec("INSERT INTO environments (id, project_id, name, created_at) VALUES ($1, $2, $3, $4)",
         {std::string("env_") + env, "prj_1", env, 1});
  }
  exec(
      "INSERT INTO api_tokens (id, workspace_id, token_sha256, created_at) VALUES ($1, $2, $3, $4)",
      {"tok_1", "ws_1", std::string(64, 'a'), 1});
  exec(
      "INSERT INTO deployments (id, project_id, environment_id, branch, git_commit_sha, "
      "source_context_key, source_dockerfile, status, replicas, cpu_millicores, memory_mib, "
      "port, hostnames, created_at, updated_at) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
      {"dep_1", "prj_1", "env_production", "main", "abc123", "contexts/prj_1/x.tar.gz",
       "Dockerfile", "PENDING", 1, 250, 256, 8080, "[]", 5});
  exec(
      "INSERT INTO deployment_steps (deployment_id, name, position, status, started_at) "
      "VALUES ($1, $2, $3, $4, $5)",
      {"dep_1", "build", 0, "RUNNING", 6});
  exec(
      "INSERT INTO builds (id, deployment_id, project_id, context_key, dockerfile, status, "
      "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
      {"bld_1", "dep_1", "prj_1", "contexts/prj_1/x.tar.gz", "Dockerfile", "RUNNING", 6});
  for (int i = 1; i <= 5; ++i) {
    exec("INSERT INTO build_log_lines (build_id, seq, logged_at, line) VALUES ($1, $2, $3, $4)",
         {"bld_1", i, 7, "line " + std::to_string(i)});
  }
  // Log lines read after a cursor.
  auto tail = db.Query(
      "SELECT seq, line FROM build_log_lines WHERE build_id = $1 AND seq > $2 "
      "ORDER BY seq",
      {"bld_1", 3});
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  ASSERT_EQ(tail->size(), 2u);
  EXPECT_EQ((*tail)[0]["line"].AsText(), "line 4");
  auto token_dup = db.Exec(
      "INSERT INTO api_tokens (id, workspace_id, token_sha256, created_at) "
      "VALUES ($1, $2, $3, $4)",
      {"tok_2", "ws_2", std::string(64, 'a'), 1});
  EXPECT_EQ(token_dup.status().code(), Code::kAlreadyExists);
  // A build may exist without a deployment (slipway build).
  exec(
      "INSERT INTO builds (id, deployment_id, project_id, context_key, dockerfile, status, "
      "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
      {"bld_2", nullptr, "prj_1", "contexts/prj_1/y.tar.gz", "Dockerfile", "PENDING", 8});
  EXPECT_EQ(Count(db, "SELECT COUNT(*) FROM workflow_runs"), 0);
  EXPECT_EQ(Count(db, "SELECT COUNT(*) FROM workflow_steps"), 0);
}

TEST_P(MigrationTest, PartitionSchemaHoldsInstancesAndRoutes) {
  auto opened = OpenPartition(url_);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Database& db = **opened;
  ASSERT_TRUE(db.Exec("INSERT INTO instances (deployment_id, instance_id, address, status, "
                      "updated_at) VALUES ($1, $2, $3, $4, $5)",
                      {"dep_1", "dep_1-0", "127.0.0.1:3000", "RUNNING", 1})
                  .ok());
  ASSERT_TRUE(db.Exec("INSERT INTO gateway_routes (hostname, deployment_id, updated_at) "
                      "VALUES ($1, $2, $3)",
                      {"api-main.localhost", "dep_1", 1})
                  .ok());
  auto dup = db.Exec(
      "INSERT INTO gateway_routes (hostname, deployment_id, updated_at) "
      "VALUES ($1, $2, $3)",
      {"api-main.localhost", "dep_2", 2});
  EXPECT_EQ(dup.status().code(), Code::kAlreadyExists);
  // The atomic switch the routing step will do: one upsert moves the host.
  auto moved = db.Exec(
      "INSERT INTO gateway_routes (hostname, deployment_id, updated_at) "
      "VALUES ($1, $2, $3) ON CONFLICT (hostname) DO UPDATE SET "
      "deployment_id = excluded.deployment_id, updated_at = excluded.updated_at",
      {"api-main.localhost", "dep_2", 2});
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  auto row = db.QueryRow("SELECT deployment_id FROM gateway_routes WHERE hostname = $1",
                         {"api-main.localhost"});
  EXPECT_EQ((**row)[0].AsText(), "dep_2");
  // The partition database has none of the main tables.
  EXPECT_FALSE(db.Query("SELECT id FROM workspaces").ok());
}

TEST_P(MigrationTest, DatabaseFromANewerSlipwayIsRefused) {
  {
    auto db = OpenMain(url_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    ASSERT_TRUE((*db)
                    ->Exec("INSERT INTO schema_migrations (version, name, applied_at) "
                           "VALUES ($1, $2, $3)",
                           {999, "from the future", 1})
                    .ok());
  }
  auto db = OpenMain(url_);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(db.status().message().find("999"), std::string::npos) << db.status().message();
}

TEST_P(MigrationTest, FailedMigrationLeavesNothingBehind) {
  auto db = Open(url_);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  const std::vector<Migration> broken = {
      {1, "good", "CREATE TABLE a (id TEXT PRIMARY KEY)", {}},
      {2, "bad", "CREATE TABLE b (id TEXT PRIMARY KEY); CREATE TABLE b (id TEXT)", {}},
  };
  Status s = Migrate(**db, broken);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("migration 2 (bad)"), std::string::npos) << s.message();
  EXPECT_EQ(Count(**db, "SELECT MAX(version) FROM schema_migrations"), 1);
  EXPECT_TRUE((*db)->Query("SELECT id FROM a").ok());
  EXPECT_FALSE((*db)->Query("SELECT id FROM b").ok());  // migration 2 rolled back entirely
}

TEST_P(MigrationTest, ConcurrentOpensMigrateOnce) {
  constexpr int kOpeners = 4;
  std::vector<std::thread> threads;
  std::vector<Status> results(kOpeners);
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] { results[i] = OpenMain(url_).status(); });
  }
  for (auto& t : threads) t.join();
  for (const auto& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  auto db = Open(url_);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(Count(**db, "SELECT COUNT(*) FROM schema_migrations"),
            static_cast<int64_t>(MigrationsFor(Schema::kMain).size()));
}

INSTANTIATE_TEST_SUITE_P(Migration, MigrationTest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) { return testing::TestDriverName(info.param); });

}  // namespace
}  // namespace slipway::db
