#include "db/pooled_database.h"

#include <algorithm>
#include <random>
#include <thread>

namespace slipway::db {

// Returns the connection to the pool however the scope is left.
class PooledDatabase::Lease {
 public:
  Lease(PooledDatabase* db, std::unique_ptr<Connection> conn) : db_(db), conn_(std::move(conn)) {}
  ~Lease() { db_->Release(std::move(conn_)); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  Connection* operator->() { return conn_.get(); }
  Connection& operator*() { return *conn_; }

 private:
  PooledDatabase* db_;
  std::unique_ptr<Connection> conn_;
};

namespace {

// The Executor handed to a WithTransaction callback: statements on the leased connection,
// remembering whether any of them failed because of a concurrent transaction.
class TxExecutor final : public Executor {
 public:
  TxExecutor(Dialect dialect, Connection& conn) : dialect_(dialect), conn_(conn) {}

  Dialect dialect() const override { return dialect_; }
  Result<Rows> Query(std::string_view sql, const Params& params) override {
    SLIPWAY_RETURN_IF_ERROR(RefuseAfterFailure());
    Rows rows;
    auto n = conn_.Run(sql, params, &rows);
    if (!n.ok()) return Note(n.status());
    return rows;
  }
  Result<int64_t> Exec(std::string_view sql, const Params& params) override {
    SLIPWAY_RETURN_IF_ERROR(RefuseAfterFailure());
    auto n = conn_.Run(sql, params, nullptr);
    if (!n.ok()) return Note(n.status());
    return n;
  }
  Status ExecScript(std::string_view sql) override {
    SLIPWAY_RETURN_IF_ERROR(RefuseAfterFailure());
    Status s = conn_.ExecScript(sql);
    return s.ok() ? s : Note(s);
  }
  bool conflicted() const { return conflicted_; }
  // Set when a statement failed: PostgreSQL refuses everything after that until rollback, and
  // SQLite is made to behave the same, so code is portable and a swallowed error can never
  // commit half a transaction.
  const Status& first_failure() const { return first_failure_; }

 private:
  Status Note(const Status& s) {
    if (conn_.last_error_retryable()) conflicted_ = true;
    if (first_failure_.ok()) first_failure_ = s;
    return s;
  }
  Status RefuseAfterFailure() const {
    if (first_failure_.ok()) return Status::Ok();
    return Status::FailedPrecondition(
        "an earlier statement of this transaction failed (" + first_failure_.ToString() +
        "), so the transaction can only roll back: return that error instead of continuing.");
  }
  Dialect dialect_;
  Connection& conn_;
  bool conflicted_ = false;
  Status first_failure_;
};

// Exponential backoff with full jitter, so transactions that conflicted do not collide again
// in lockstep: up to 2 ms, 4 ms, ... capped at 200 ms.
void BackoffBeforeRetry(int attempt) {
  thread_local std::minstd_rand rng(std::random_device{}());
  int cap_ms = std::min(200, 2 << std::min(attempt, 10));
  std::uniform_int_distribution<int> dist(0, cap_ms);
  std::this_thread::sleep_for(std::chrono::milliseconds(dist(rng)));
}

}  // namespace

PooledDatabase::PooledDatabase(Dialect dialect, std::string description, ConnectionFactory factory,
                               std::unique_ptr<Connection> first, const OpenOptions& options,
                               NoticeConnector notices)
    : dialect_(dialect),
      description_(std::move(description)),
      factory_(std::move(factory)),
      options_(options),
      notices_(std::move(notices)) {
  idle_.push_back(std::move(first));
  open_ = 1;
}

PooledDatabase::~PooledDatabase() = default;

Result<std::unique_ptr<Connection>> PooledDatabase::Acquire() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return conn;
    }
    if (open_ < std::max(1, options_.max_connections)) {
      ++open_;
      lock.unlock();
      auto conn = factory_();
      if (!conn.ok()) {
        lock.lock();
        --open_;
        cv_.notify_one();
        return conn.status();
      }
      return std::move(conn).value();
    }
    cv_.wait(lock);
  }
}

void PooledDatabase::Release(std::unique_ptr<Connection> conn) {
  std::lock_guard lock(mu_);
  if (conn->broken()) {
    --open_;
  } else {
    idle_.push_back(std::move(conn));
  }
  cv_.notify_one();
}

Result<Rows> PooledDatabase::Query(std::string_view sql, const Params& params) {
  SLIPWAY_ASSIGN_OR_RETURN(auto conn, Acquire());
  Lease lease(this, std::move(conn));
  Rows rows;
  SLIPWAY_ASSIGN_OR_RETURN(int64_t n, lease->Run(sql, params, &rows));
  (void)n;
  return rows;
}

Result<int64_t> PooledDatabase::Exec(std::string_view sql, const Params& params) {
  SLIPWAY_ASSIGN_OR_RETURN(auto conn, Acquire());
  Lease lease(this, std::move(conn));
  return lease->Run(sql, params, nullptr);
}

Status PooledDatabase::ExecScript(std::string_view sql) {
  SLIPWAY_ASSIGN_OR_RETURN(auto conn, Acquire());
  Lease lease(this, std::move(conn));
  return lease->ExecScript(sql);
}

Status PooledDatabase::WithTransaction(const std::function<Status(Executor& tx)>& fn,
                                       Isolation isolation) {
  const int attempts = std::max(1, options_.max_transaction_attempts);
  Status last;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    if (attempt > 1) BackoffBeforeRetry(attempt);
    SLIPWAY_ASSIGN_OR_RETURN(auto conn, Acquire());
    Lease lease(this, std::move(conn));
    last = lease->Begin(isolation);
    if (!last.ok()) {
      if (lease->last_error_retryable()) continue;
      return last;
    }
    TxExecutor tx(dialect_, *lease);
    last = fn(tx);
    if (last.ok() && !tx.first_failure().ok()) {
      last = Status::FailedPrecondition(
          "a statement of the transaction failed and the callback ignored it, so nothing was "
          "committed: " +
          tx.first_failure().ToString());
    }
    if (!last.ok()) {
      (void)lease->Rollback();
      if (tx.conflicted()) continue;
      return last;
    }
    last = lease->Commit();
    if (last.ok()) return last;
    (void)lease->Rollback();
    if (!lease->last_error_retryable()) return last;
  }
  return Status(last.code(), last.message() + " (the transaction conflicted with concurrent ones " +
                                 std::to_string(attempts) +
                                 " times in a row; retry the operation later)");
}

}  // namespace slipway::db
