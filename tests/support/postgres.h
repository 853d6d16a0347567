// A PostgreSQL database for tests, on any machine where PostgreSQL is installed, with no server
// running and no configuration.
#pragma once

#include <sys/types.h>

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

// A PostgreSQL cluster of the test's own: initdb in a temporary directory (as the postgres
// user when running as root), a free 127.0.0.1 port, fsync off. The fault tests stop and start
// it under a running ctrl; the shared system server is never touched. Throws
// std::runtime_error with the tools' output when it cannot start.
class PrivatePostgres {
 public:
  PrivatePostgres();
  ~PrivatePostgres();  // stops the server and deletes its directory
  PrivatePostgres(const PrivatePostgres&) = delete;
  PrivatePostgres& operator=(const PrivatePostgres&) = delete;

  // An immediate shutdown (SIGQUIT to the postmaster's PID): every connection is cut.
  void Stop();
  // Starts the stopped server again on the same port and data.
  void Start();
  pid_t pid() const;  // the postmaster's, 0 when stopped

  std::string AdminUrl() const;
  // A URL of a fresh, empty database on this cluster.
  std::string NewDatabase();
  const std::string& bindir() const { return bindir_; }

 private:
  std::string DataDir() const;
  std::string AsPostgres(const std::string& command) const;
  std::string StartServer();  // "" on success, else the tools' output

  std::string bindir_;
  std::string dir_;
  bool as_postgres_ = false;
  int port_ = 0;
};

// The two database drivers every db and workflow test runs against.
enum class TestDriver { kSqlite, kPostgres };
const char* TestDriverName(TestDriver driver);  // "sqlite", "postgres": test name suffixes

// A fresh, empty database of that driver: a new SQLite file under dir, or a new PostgreSQL
// database (PostgresUrlForTests).
std::string FreshDatabaseUrl(TestDriver driver, const std::filesystem::path& dir);

}  // namespace slipway::testing
