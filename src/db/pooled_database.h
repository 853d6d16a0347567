// A Database over a pool of driver connections: the part of thread-safety and transactions
// that does not depend on the engine. Internal to src/db.
//
// Connections are opened lazily up to OpenOptions::max_connections; a caller that finds none
// free waits for one. A connection is leased for one statement, or for a whole transaction,
// and returned afterwards, unless it is broken, in which case it is closed and a fresh one is
// opened on demand (so a restarted PostgreSQL server is reconnected to transparently).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "db/connection.h"
#include "db/database.h"

namespace slipway::db {

class PooledDatabase final : public Database {
 public:
  // first is an already-opened connection (Open validates the URL with it).
  // notices is how the engine receives notices across processes (empty when it has none).
  PooledDatabase(Dialect dialect, std::string description, ConnectionFactory factory,
                 std::unique_ptr<Connection> first, const OpenOptions& options,
                 NoticeConnector notices = nullptr);
  ~PooledDatabase() override;

  Dialect dialect() const override { return dialect_; }
  Result<Rows> Query(std::string_view sql, const Params& params) override;
  Result<int64_t> Exec(std::string_view sql, const Params& params) override;
  Status ExecScript(std::string_view sql) override;
  Status WithTransaction(const std::function<Status(Executor& tx)>& fn,
                         Isolation isolation) override;
  std::string Describe() const override { return description_; }
  NoticeConnector notice_connector() const override { return notices_; }

 private:
  class Lease;
  Result<std::unique_ptr<Connection>> Acquire();
  void Release(std::unique_ptr<Connection> conn);

  const Dialect dialect_;
  const std::string description_;
  const ConnectionFactory factory_;
  const OpenOptions options_;
  const NoticeConnector notices_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_ = 0;  // idle plus leased
};

}  // namespace slipway::db
