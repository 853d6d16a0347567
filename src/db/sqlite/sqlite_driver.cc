#include "db/sqlite/sqlite_driver.h"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <unordered_map>

#include "db/connection.h"
#include "db/pooled_database.h"

namespace slipway::db {
namespace {

// Prepared statements kept per connection; beyond this many distinct SQL strings the cache is
// emptied rather than grown (the application uses a bounded set of statements).
constexpr size_t kMaxCachedStatements = 128;

class SqliteConnection final : public Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const std::string& path,
                                                  const OpenOptions& options) {
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &raw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    auto conn = std::unique_ptr<SqliteConnection>(new SqliteConnection(raw, path));
    if (rc != SQLITE_OK) {
      return Status::Unavailable("cannot open the SQLite database at \"" + path +
                                 "\": " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)) +
                                 " (check that the directory exists and is writable).");
    }
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, static_cast<int>(options.busy_timeout.count()));
    SLIPWAY_RETURN_IF_ERROR(conn->ExecScript("PRAGMA foreign_keys = ON"));
    if (path != ":memory:") {
      // Switching a new database to WAL needs its exclusive lock, and SQLite answers BUSY at
      // once, without the busy handler, when another connection opening it at the same moment
      // holds a lock it must wait behind: retry for as long as the busy timeout allows.
      Rows rows;
      const auto deadline = std::chrono::steady_clock::now() + options.busy_timeout;
      for (;;) {
        rows.clear();
        Result<int64_t> switched = conn->Run("PRAGMA journal_mode = WAL", {}, &rows);
        if (switched.ok()) break;
        if (!conn->last_error_retryable() || std::chrono::steady_clock::now() >= deadline) {
          return switched.status();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (rows.empty() || rows[0][0].AsText() != "wal") {
        return Status::FailedPrecondition(
            "the SQLite database at \"" + path +
            "\" cannot use write-ahead logging (WAL); put the data directory on a local "
            "filesystem.");
      }
      // In WAL mode NORMAL survives a crashed process (every commit is in the log); only a
      // power loss can lose the last commits, which durable workflows then replay.
      SLIPWAY_RETURN_IF_ERROR(conn->ExecScript("PRAGMA synchronous = NORMAL"));
    }
    return std::unique_ptr<Connection>(std::move(conn));
  }

  ~SqliteConnection() override {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  Result<int64_t> Run(std::string_view sql, const Params& params, Rows* rows) override {
    retryable_ = false;
    SLIPWAY_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(sql));
    // Leaves the cached statement ready for its next use however this call ends.
    struct Reset {
      sqlite3_stmt* s;
      ~Reset() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
      }
    } reset{stmt};

    SLIPWAY_RETURN_IF_ERROR(Bind(stmt, sql, params));
    const int64_t changes_before = sqlite3_total_changes64(db_);
    std::shared_ptr<std::vector<std::string>> columns;
    for (;;) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Error(rc, sql);
      if (rows == nullptr) continue;
      const int n = sqlite3_column_count(stmt);
      if (!columns) {
        columns = std::make_shared<std::vector<std::string>>();
        for (int i = 0; i < n; ++i) columns->push_back(sqlite3_column_name(stmt, i));
      }
      std::vector<Value> values;
      values.reserve(n);
      for (int i = 0; i < n; ++i) values.push_back(ColumnValue(stmt, i));
      rows->emplace_back(columns, std::move(values));
    }
    // sqlite3_changes64 keeps the count of the last INSERT/UPDATE/DELETE, even across a later
    // SELECT, so it only counts when this statement changed something.
    return sqlite3_total_changes64(db_) != changes_before ? sqlite3_changes64(db_) : 0;
  }

  Status ExecScript(std::string_view sql) override {
    retryable_ = false;
    char* err = nullptr;
    std::string script(sql);
    int rc = sqlite3_exec(db_, script.c_str(), nullptr, nullptr, &err);
    if (err != nullptr) sqlite3_free(err);
    if (rc != SQLITE_OK) return Error(rc, sql);
    return Status::Ok();
  }

  Status Begin(Isolation) override {
    // IMMEDIATE takes the write lock now (waiting up to the busy timeout), so a transaction
    // never fails later when it first writes after reading.
    return Run("BEGIN IMMEDIATE", {}, nullptr).status();
  }
  Status Commit() override { return Run("COMMIT", {}, nullptr).status(); }
  Status Rollback() override {
    // SQLite may already have rolled back (some errors do); that is not a failure.
    if (sqlite3_get_autocommit(db_)) return Status::Ok();
    return Run("ROLLBACK", {}, nullptr).status();
  }

  bool last_error_retryable() const override { return retryable_; }
  bool broken() const override { return sqlite3_get_autocommit(db_) == 0; }

 private:
  SqliteConnection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  Result<sqlite3_stmt*> Prepare(std::string_view sql) {
    std::string key(sql);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    if (cache_.size() >= kMaxCachedStatements) {
      for (auto& [s, stmt] : cache_) sqlite3_finalize(stmt);
      cache_.clear();
    }
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, key.data(), static_cast<int>(key.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK) return Error(rc, sql);
    if (stmt == nullptr) {
      return Status::InvalidArgument("the SQL text holds no statement: \"" + key + "\".");
    }
    for (const char* p = tail; p != nullptr && *p != '\0'; ++p) {
      if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != ';') {
        sqlite3_finalize(stmt);
        return Status::InvalidArgument(
            "Query and Exec run one statement, but this SQL holds several (use ExecScript): " +
            AbbreviateSql(sql));
      }
    }
    cache_.emplace(std::move(key), stmt);
    return stmt;
  }

  Status Bind(sqlite3_stmt* stmt, std::string_view sql, const Params& params) {
    const int expected = sqlite3_bind_parameter_count(stmt);
    if (expected != static_cast<int>(params.size())) {
      return Status::InvalidArgument("the statement takes " + std::to_string(expected) +
                                     " parameters but " + std::to_string(params.size()) +
                                     " were given: " + AbbreviateSql(sql));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string name = "$" + std::to_string(i + 1);
      const int index = sqlite3_bind_parameter_index(stmt, name.c_str());
      if (index == 0) {
        return Status::InvalidArgument("the statement does not use parameter " + name +
                                       " (write parameters as $1, $2, ...): " + AbbreviateSql(sql));
      }
      const Value& v = params[i];
      int rc = SQLITE_OK;
      switch (v.type()) {
        case Value::Type::kNull:
          rc = sqlite3_bind_null(stmt, index);
          break;
        case Value::Type::kInt:
          rc = sqlite3_bind_int64(stmt, index, v.AsInt());
          break;
        case Value::Type::kDouble:
          rc = sqlite3_bind_double(stmt, index, v.AsDouble());
          break;
        case Value::Type::kText: {
          // The Value outlives the statement's execution, so SQLite need not copy the bytes.
          std::string_view s = v.bytes();
          rc = sqlite3_bind_text64(stmt, index, s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8);
          break;
        }
        case Value::Type::kBlob: {
          std::string_view b = v.bytes();
          // A zero-length blob bound from a null pointer would read back as NULL.
          rc = b.empty() ? sqlite3_bind_zeroblob(stmt, index, 0)
                         : sqlite3_bind_blob64(stmt, index, b.data(), b.size(), SQLITE_STATIC);
          break;
        }
      }
      if (rc != SQLITE_OK) return Error(rc, sql);
    }
    return Status::Ok();
  }

  static Value ColumnValue(sqlite3_stmt* stmt, int i) {
    switch (sqlite3_column_type(stmt, i)) {
      case SQLITE_INTEGER:
        return Value(static_cast<int64_t>(sqlite3_column_int64(stmt, i)));
      case SQLITE_FLOAT:
        return Value(sqlite3_column_double(stmt, i));
      case SQLITE_TEXT: {
        auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
        return Value(std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt, i))));
      }
      case SQLITE_BLOB: {
        auto* p = static_cast<const char*>(sqlite3_column_blob(stmt, i));
        size_t n = static_cast<size_t>(sqlite3_column_bytes(stmt, i));
        return Value(Blob{p ? std::string(p, n) : std::string()});
      }
      default:
        return Value();
    }
  }

  Status Error(int rc, std::string_view sql) {
    const int primary = rc & 0xff;
    const std::string detail = std::string(sqlite3_errmsg(db_)) + " [" + AbbreviateSql(sql) + "]";
    switch (primary) {
      case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
          return Status::AlreadyExists("a row with the same key already exists: " + detail);
        }
        return Status::FailedPrecondition("the change violates a database constraint: " + detail);
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        retryable_ = true;
        return Status::Unavailable("the SQLite database at \"" + path_ +
                                   "\" stayed locked by another writer for longer than the busy "
                                   "timeout; retry, or look for a process holding a long "
                                   "transaction: " +
                                   detail);
      case SQLITE_RANGE:
      case SQLITE_MISMATCH:
        return Status::InvalidArgument("the statement and its parameters do not match: " + detail);
      case SQLITE_CANTOPEN:
      case SQLITE_IOERR:
      case SQLITE_FULL:
      case SQLITE_READONLY:
        return Status::Unavailable(
            "the SQLite database at \"" + path_ +
            "\" cannot be written (check the disk and its permissions): " + detail);
      default:
        return Status::Internal("SQLite could not run the statement: " + detail);
    }
  }

  sqlite3* db_;
  std::string path_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
  bool retryable_ = false;
};

}  // namespace

Result<std::unique_ptr<Database>> OpenSqlite(std::string_view path_view,
                                             const OpenOptions& options) {
  std::string path(path_view);
  OpenOptions opts = options;
  if (path == ":memory:") {
    opts.max_connections = 1;  // every connection would see its own empty database
  } else {
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) {
      return Status::Unavailable("cannot create the directory \"" + parent.string() +
                                 "\" for the SQLite database: " + ec.message() +
                                 " (choose a writable data directory).");
    }
  }
  SLIPWAY_ASSIGN_OR_RETURN(auto first, SqliteConnection::Open(path, opts));
  ConnectionFactory factory = [path, opts] { return SqliteConnection::Open(path, opts); };
  return std::unique_ptr<Database>(std::make_unique<PooledDatabase>(
      Dialect::kSqlite, "sqlite:" + path, std::move(factory), std::move(first), opts));
}

}  // namespace slipway::db
