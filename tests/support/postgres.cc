#include "support/postgres.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "base/crypto.h"
#include "support/test_support.h"

namespace slipway::testing {
namespace {

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// The directory of initdb/pg_ctl/psql: $SLIPWAY_PG_BINDIR, else Debian's newest
// /usr/lib/postgresql/<version>/bin, else whatever PATH has ("").
std::string BinDir() {
  if (const char* env = std::getenv("SLIPWAY_PG_BINDIR"); env && *env) return env;
  std::string best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    int version = std::atoi(entry.path().filename().c_str());
    if (version > best_version && std::filesystem::exists(entry.path() / "bin" / "initdb")) {
      best_version = version;
      best = (entry.path() / "bin").string();
    }
  }
  return best;
}

std::string Tool(const std::string& bindir, const std::string& name) {
  return bindir.empty() ? name : bindir + "/" + name;
}

// The same server, another database: the URL's path, or a dbname keyword appended (libpq
// lets a later keyword override an earlier one).
std::string WithDatabase(const std::string& url, const std::string& db) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url + " dbname=" + db;
  size_t path = url.find('/', scheme + 3);
  size_t query = url.find('?', scheme + 3);
  std::string authority = url.substr(0, std::min(path, query));
  std::string rest = query == std::string::npos ? "" : url.substr(query);
  return authority + "/" + db + rest;
}

PrivatePostgres* cluster = nullptr;

void StopCluster() { delete cluster; }

// CREATE DATABASE t_<random> on the server admin_url names; its URL.
std::string CreateDatabase(const std::string& psql, const std::string& admin_url) {
  const std::string db = "t_" + RandomHex(8);
  auto created = RunCommand(psql + " -X -q -v ON_ERROR_STOP=1 -d " + Quote(admin_url) + " -c " +
                            Quote("CREATE DATABASE " + db));
  if (created.exit_code != 0) {
    throw std::runtime_error("cannot create a test database on " + admin_url + ":\n" +
                             created.output);
  }
  return WithDatabase(admin_url, db);
}

}  // namespace

std::string PostgresUrlForTests() {
  static std::once_flag once;
  static std::string admin_url;
  static std::string psql;
  std::call_once(once, [] {
    if (const char* env = std::getenv("SLIPWAY_TEST_DATABASE_URL"); env && *env) {
      admin_url = env;
      psql = Tool(BinDir(), "psql");
      return;
    }
    cluster = new PrivatePostgres();  // lives until exit; StopCluster removes it
    std::atexit(StopCluster);
    admin_url = cluster->AdminUrl();
    psql = Tool(cluster->bindir(), "psql");
  });
  return CreateDatabase(psql, admin_url);
}

const char* TestDriverName(TestDriver driver) {
  return driver == TestDriver::kSqlite ? "sqlite" : "postgres";
}

std::string FreshDatabaseUrl(TestDriver driver, const std::filesystem::path& dir) {
  if (driver == TestDriver::kPostgres) return PostgresUrlForTests();
  return "sqlite://" + (dir / ("db-" + RandomHex(4) + ".db")).string();
}

PrivatePostgres::PrivatePostgres() {
  bindir_ = BinDir();
  char tmpl[] = "/tmp/slipway-pg-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("cannot create a temporary directory");
  dir_ = tmpl;
  as_postgres_ = geteuid() == 0;
  if (as_postgres_) {
    passwd* pw = getpwnam("postgres");
    if (pw == nullptr) {
      throw std::runtime_error(
          "the tests run as root, and initdb refuses root, but there is no 'postgres' user to "
          "run it as: install the postgresql package, or set SLIPWAY_TEST_DATABASE_URL.");
    }
    if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      throw std::runtime_error("cannot give " + dir_ + " to the postgres user");
    }
  }
  auto initdb = RunCommand(AsPostgres(Tool(bindir_, "initdb") + " -D " + Quote(DataDir()) +
                                      " -U postgres -A trust -E UTF8 --no-sync"));
  if (initdb.exit_code != 0) {
    std::filesystem::remove_all(dir_);
    throw std::runtime_error(
        "initdb failed (is PostgreSQL installed? set SLIPWAY_PG_BINDIR or "
        "SLIPWAY_TEST_DATABASE_URL otherwise):\n" +
        initdb.output);
  }
  // A port that was free a moment ago may be taken by the time the server binds it.
  std::string last_output;
  for (int attempt = 0; attempt < 3 && port_ == 0; ++attempt) {
    port_ = FreePort();
    last_output = StartServer();
    if (!last_output.empty()) port_ = 0;
  }
  if (port_ == 0) {
    std::filesystem::remove_all(dir_);
    throw std::runtime_error("the test PostgreSQL server did not start:\n" + last_output);
  }
}

PrivatePostgres::~PrivatePostgres() {
  Stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string PrivatePostgres::DataDir() const { return dir_ + "/data"; }

std::string PrivatePostgres::AsPostgres(const std::string& command) const {
  return as_postgres_ ? "runuser -u postgres -- " + command : command;
}

std::string PrivatePostgres::StartServer() {
  const std::string server_options = "-k " + dir_ + " -p " + std::to_string(port_) +
                                     " -h 127.0.0.1 -F -c max_connections=300";
  auto start = RunCommand(AsPostgres(Tool(bindir_, "pg_ctl") + " -D " + Quote(DataDir()) +
                                     " -l " + Quote(dir_ + "/server.log") + " -w -t 60 -o " +
                                     Quote(server_options) + " start"));
  if (start.exit_code == 0) return "";
  return start.output + "\n" + ReadFile(dir_ + "/server.log") + "\n(pg_ctl start failed)";
}

pid_t PrivatePostgres::pid() const {
  // The first line of postmaster.pid is the server's PID while it runs.
  return static_cast<pid_t>(std::atol(ReadFile(DataDir() + "/postmaster.pid").c_str()));
}

void PrivatePostgres::Stop() {
  const pid_t server = pid();
  if (!ProcessRunning(server)) return;
  // SIGQUIT: the immediate shutdown, every connection cut at once, as when the server crashes.
  ::kill(server, SIGQUIT);
  for (int i = 0; i < 300 && ProcessRunning(server); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (ProcessRunning(server)) ::kill(server, SIGKILL);
}

void PrivatePostgres::Start() {
  std::string problem = StartServer();
  if (!problem.empty()) throw std::runtime_error("the test PostgreSQL server did not start again:\n" + problem);
}

std::string PrivatePostgres::AdminUrl() const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres";
}

std::string PrivatePostgres::NewDatabase() { return CreateDatabase(Tool(bindir_, "psql"), AdminUrl()); }

}  // namespace slipway::testing
