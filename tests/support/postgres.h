// A PostgreSQL database for tests, on any machine where PostgreSQL is installed, with no server
// running and no configuration.
#pragma once

#include <filesystem>
#include <string>

namespace slipway::testing {

// A URL of a fresh, empty database (CREATE DATABASE t_<random>) on every call.
//
// When SLIPWAY_TEST_DATABASE_URL is set, the databases are created on that server (the URL's
// user must be allowed to CREATE DATABASE). Otherwise the first call starts a throwaway cluster
// for this process: initdb in a temporary directory (as the postgres user when running as
// root, since initdb refuses root), listening on a free 127.0.0.1 port with its unix socket in
// that directory, fsync off; it is stopped and deleted when the process exits.
//
// Throws std::runtime_error with initdb's or the server's own output when it cannot, so a
// test fails with the reason (it is never skipped).
std::string PostgresUrlForTests();

// The two database drivers every db and workflow test runs against.
enum class TestDriver { kSqlite, kPostgres };
const char* TestDriverName(TestDriver driver);  // "sqlite", "postgres": test name suffixes

// A fresh, empty database of that driver: a new SQLite file under dir, or a new PostgreSQL
// database (PostgresUrlForTests).
std::string FreshDatabaseUrl(TestDriver driver, const std::filesystem::path& dir);

}  // namespace slipway::testing
