// Versioned schema migrations for slipway's two databases.
//
// main:      workspaces, projects, environments, API tokens, deployments and their steps,
//            builds and their log lines, the workflow journal (runs and steps).
// partition: instances and gateway routes (written by krane and read by the gateway).
//
// Promise: each migration is applied at most once, inside a transaction together with its row
// in `schema_migrations`, so a crash leaves either all of it or none. Opening the same database
// from several processes at once is safe (SQLite serializes writers; on PostgreSQL an advisory
// lock does). A database migrated by a newer slipway (unknown versions) is refused rather than
// used with a schema this binary does not understand.
//
// Adding a migration: append to the list with the next version; never edit one that shipped.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "db/database.h"

namespace slipway::db {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;           // portable DDL, `;`-separated statements
  std::string_view postgres_sql;  // replaces sql on PostgreSQL when not empty
};

enum class Schema { kMain, kPartition };

const std::vector<Migration>& MigrationsFor(Schema schema);

// Applies the migrations the database does not have yet, in version order.
Status Migrate(Database& db, const std::vector<Migration>& migrations,
               Clock& clock = SystemClock());

// Open followed by Migrate with that schema's migrations: what services call at start.
Result<std::unique_ptr<Database>> OpenMain(std::string_view url, const OpenOptions& options = {});
Result<std::unique_ptr<Database>> OpenPartition(std::string_view url,
                                                const OpenOptions& options = {});

}  // namespace slipway::db
