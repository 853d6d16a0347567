// The SQLite driver: one database file, WAL journal, foreign keys on, a busy timeout so
// writers queue instead of failing, BEGIN IMMEDIATE transactions. Parameters are written
// `$1, $2, ...` as on PostgreSQL (SQLite takes them as named parameters).
#pragma once

#include <memory>
#include <string_view>

#include "db/database.h"

namespace slipway::db {

// path is a file path (its directory is created when missing) or ":memory:" (one private
// in-memory database, which limits the pool to a single connection).
Result<std::unique_ptr<Database>> OpenSqlite(std::string_view path, const OpenOptions& options);

}  // namespace slipway::db
