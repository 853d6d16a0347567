// What a driver implements: one connection to one database, used by one thread at a time.
// PooledDatabase (pooled_database.h) turns a factory of these into a thread-safe Database.
// Internal to src/db: other modules see only database.h.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "db/database.h"

namespace slipway::db {

class Connection {
 public:
  virtual ~Connection() = default;

  // Runs one statement; appends its rows to *rows when rows is not null; returns the number of
  // rows it changed.
  virtual Result<int64_t> Run(std::string_view sql, const Params& params, Rows* rows) = 0;
  virtual Status ExecScript(std::string_view sql) = 0;

  virtual Status Begin(Isolation isolation) = 0;
  virtual Status Commit() = 0;
  virtual Status Rollback() = 0;

  // True when the most recent failure was a conflict with a concurrent transaction
  // (serialization failure, deadlock): the whole transaction may succeed if run again.
  virtual bool last_error_retryable() const = 0;
  // True when the connection can no longer be used (lost, or stuck inside a transaction): the
  // pool closes it instead of handing it out again.
  virtual bool broken() const = 0;
};

using ConnectionFactory = std::function<Result<std::unique_ptr<Connection>>()>;

// A statement's first line, shortened, for error messages.
std::string AbbreviateSql(std::string_view sql);

}  // namespace slipway::db
