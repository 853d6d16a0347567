#include "workflow/engine.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>

#include <spdlog/spdlog.h>

#include "base/crypto.h"
#include "base/ids.h"

namespace slipway::workflow {

// The lease one execution holds on its run. `claims` is the fencing token: every claim of the
// run increments it, so writes by an execution that lost the run match no row.
struct LeaseState {
  LeaseState(std::string id, int64_t c) : run_id(std::move(id)), claims(c) {}
  const std::string run_id;
  const int64_t claims;
  std::atomic<bool> lost{false};
};

struct WorkflowEngine::Claim {
  std::string id, workflow, key, input;
  int64_t claims = 0;
};

namespace {

using db::Executor;
using db::Isolation;
using std::chrono::milliseconds;
using TimePoint = std::chrono::system_clock::time_point;

// Run and step states as stored in workflow_runs.status / workflow_steps.status.
constexpr std::string_view kStepSucceeded = "succeeded";
constexpr std::string_view kStepFailed = "failed";
constexpr std::string_view kStepRetrying = "retrying";

int64_t ToMillis(TimePoint t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

TimePoint FromMillis(int64_t ms) { return TimePoint(milliseconds(ms)); }

std::string DefaultOwner() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host) + "/" + std::to_string(getpid()) + "/" + RandomHex(3);
}

RunStatus ParseRunStatus(std::string_view s) {
  if (s == "running") return RunStatus::kRunning;
  if (s == "succeeded") return RunStatus::kSucceeded;
  if (s == "failed") return RunStatus::kFailed;
  return RunStatus::kPending;
}

Status StoredError(const db::Value& code, const db::Value& message) {
  Code c = CodeFromName(code.AsText());
  if (c == Code::kOk) c = Code::kUnknown;
  return Status(c, message.AsText());
}

milliseconds Backoff(const RetryPolicy& policy, int64_t attempt) {
  milliseconds wait = policy.initial_backoff;
  for (int64_t i = 1; i < attempt && wait < policy.max_backoff; ++i) wait *= 2;
  return std::min(wait, policy.max_backoff);
}

// Writes (or overwrites) one step's journal entry.
Status RecordStep(Executor& tx, std::string_view run_id, std::string_view name,
                  std::string_view status, int64_t attempts, int64_t started_at, int64_t now,
                  const Result<std::string>& outcome, std::optional<int64_t> retry_at) {
  db::Value output, code, error, finished_at;
  if (outcome.ok()) {
    output = *outcome;
  } else {
    code = CodeName(outcome.status().code());
    error = outcome.status().message();
  }
  if (status != kStepRetrying) finished_at = now;
  return tx
      .Exec(
          "INSERT INTO workflow_steps (run_id, name, status, output, error_code, error, "
          "attempts, retry_at, started_at, finished_at) "
          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
          "ON CONFLICT (run_id, name) DO UPDATE SET status = excluded.status, "
          "output = excluded.output, error_code = excluded.error_code, error = excluded.error, "
          "attempts = excluded.attempts, retry_at = excluded.retry_at, "
          "finished_at = excluded.finished_at",
          {run_id, name, status, output, code, error, attempts, retry_at, started_at, finished_at})
      .status();
}

}  // namespace

std::string_view RunStatusName(RunStatus status) {
  switch (status) {
    case RunStatus::kPending:
      return "pending";
    case RunStatus::kRunning:
      return "running";
    case RunStatus::kSucceeded:
      return "succeeded";
    case RunStatus::kFailed:
      return "failed";
  }
  return "pending";
}

bool IsTransient(const Status& status) {
  switch (status.code()) {
    case Code::kUnavailable:
    case Code::kResourceExhausted:
    case Code::kAborted:
    case Code::kDeadlineExceeded:
      return true;
    default:
      return false;
  }
}

Status Terminal(Status status) {
  if (!IsTransient(status)) return status;
  return Status(Code::kFailedPrecondition, status.message());
}

// --- RunContext ---------------------------------------------------------------------------

RunContext::RunContext(WorkflowEngine& engine, std::shared_ptr<LeaseState> lease,
                       std::string run_id, std::string workflow, std::string key, std::string input)
    : engine_(engine),
      lease_(std::move(lease)),
      run_id_(std::move(run_id)),
      workflow_(std::move(workflow)),
      key_(std::move(key)),
      input_(std::move(input)) {}

Clock& RunContext::clock() const { return engine_.clock_; }

bool RunContext::interrupted() const { return lease_->lost || engine_.stopping(); }

Status RunContext::Interruption() {
  canceled_ = true;
  if (lease_->lost) {
    return Status::Canceled("run " + run_id_ +
                            " was taken over by another engine after its lease expired; this "
                            "execution stops without recording anything more.");
  }
  return Status::Canceled("the workflow engine is stopping; run " + run_id_ +
                          " resumes at its first unfinished step when an engine runs again.");
}

Status RunContext::Fenced(const std::function<Status(Executor& tx)>& fn) {
  bool lost = false;
  Status s = engine_.db_.WithTransaction(
      [&](Executor& tx) -> Status {
        lost = false;
        // Extending the lease here also locks the run's row (PostgreSQL), so no other engine
        // can claim the run between this check and the commit of the journal entry.
        SLIPWAY_ASSIGN_OR_RETURN(
            int64_t n,
            tx.Exec("UPDATE workflow_runs SET lease_until = $1, updated_at = $2 "
                    "WHERE id = $3 AND owner = $4 AND claims = $5 AND status = 'running'",
                    {engine_.LeaseUntilMillis(), engine_.NowMillis(), run_id_, engine_.owner_,
                     lease_->claims}));
        if (n == 0) {
          lost = true;
          return Status::Aborted("the lease is no longer ours");
        }
        return fn(tx);
      },
      Isolation::kReadCommitted);
  if (lost) {
    lease_->lost = true;
    engine_.cv_.notify_all();
    return Interruption();
  }
  if (!s.ok() && !canceled_) {
    // The journal could not be written (the database is failing): stop this execution without
    // failing the run; the run is released and resumes from its journal later.
    canceled_ = true;
  }
  return s;
}

Result<std::string> RunContext::Step(std::string_view name,
                                     const std::function<Result<std::string>()>& fn,
                                     const RetryPolicy& policy) {
  return RunStep(name, policy, false, [&](Executor*) { return fn(); });
}

Result<std::string> RunContext::TransactionalStep(
    std::string_view name, const std::function<Result<std::string>(Executor& tx)>& fn,
    const RetryPolicy& policy) {
  return RunStep(name, policy, true, [&](Executor* tx) { return fn(*tx); });
}

Result<std::string> RunContext::RunStep(std::string_view name, const RetryPolicy& policy,
                                        bool transactional, const Body& body) {
  auto journaled = engine_.db_.QueryRow(
      "SELECT status, output, error_code, error, attempts, retry_at, started_at "
      "FROM workflow_steps WHERE run_id = $1 AND name = $2",
      {run_id_, name});
  if (!journaled.ok()) {
    canceled_ = true;  // cannot tell whether the step ran: stop, resume later
    return journaled.status().WithContext("reading the journal of step \"" + std::string(name) +
                                          "\"");
  }
  int64_t attempts = 0;
  int64_t started_at = engine_.NowMillis();
  if (*journaled) {
    const db::Row& row = **journaled;
    const std::string status = row["status"].AsText();
    if (status == kStepSucceeded) return row["output"].AsText();
    if (status == kStepFailed) return StoredError(row["error_code"], row["error"]);
    attempts = row["attempts"].AsInt();
    started_at = row["started_at"].AsInt();
    SLIPWAY_RETURN_IF_ERROR(SleepUntil(FromMillis(row["retry_at"].AsInt())));
  }

  for (;;) {
    if (interrupted()) return Interruption();
    ++attempts;
    Result<std::string> outcome = Status::Unknown("the step did not run");
    if (transactional) {
      Status s = Fenced([&](Executor& tx) -> Status {
        outcome = body(&tx);
        // A failed body's writes roll back; its failure is journaled below, on its own.
        if (!outcome.ok()) return outcome.status();
        return RecordStep(tx, run_id_, name, kStepSucceeded, attempts, started_at,
                          engine_.NowMillis(), outcome, std::nullopt);
      });
      if (canceled_) return s;
      if (outcome.ok()) {
        if (!s.ok()) return s;
        return outcome;
      }
    } else {
      outcome = body(nullptr);
      if (outcome.ok()) {
        Status s = Fenced([&](Executor& tx) {
          return RecordStep(tx, run_id_, name, kStepSucceeded, attempts, started_at,
                            engine_.NowMillis(), outcome, std::nullopt);
        });
        if (!s.ok()) return s;
        return outcome;
      }
    }

    // The body failed. If we are stopping, it may have failed because of that: record nothing.
    if (interrupted()) return Interruption();
    const int64_t now = engine_.NowMillis();
    if (IsTransient(outcome.status()) && attempts < policy.max_attempts) {
      const int64_t retry_at = now + Backoff(policy, attempts).count();
      Status s = Fenced([&](Executor& tx) {
        return RecordStep(tx, run_id_, name, kStepRetrying, attempts, started_at, now, outcome,
                          retry_at);
      });
      if (!s.ok()) return s;
      SLIPWAY_RETURN_IF_ERROR(SleepUntil(FromMillis(retry_at)));
      continue;
    }
    Status s = Fenced([&](Executor& tx) {
      return RecordStep(tx, run_id_, name, kStepFailed, attempts, started_at, now, outcome,
                        std::nullopt);
    });
    if (!s.ok()) return s;
    return outcome.status();
  }
}

Result<std::chrono::system_clock::time_point> RunContext::Deadline(std::string_view name,
                                                                   milliseconds after) {
  SLIPWAY_ASSIGN_OR_RETURN(
      std::string at, Step("@deadline/" + std::string(name), [&] {
        return Result<std::string>(std::to_string(ToMillis(clock().Now() + after)));
      }));
  return FromMillis(std::stoll(at));
}

Status RunContext::Sleep(std::string_view name, milliseconds duration) {
  SLIPWAY_ASSIGN_OR_RETURN(
      std::string at, Step("@sleep/" + std::string(name), [&] {
        return Result<std::string>(std::to_string(ToMillis(clock().Now() + duration)));
      }));
  return SleepUntil(FromMillis(std::stoll(at)));
}

Status RunContext::SleepUntil(std::chrono::system_clock::time_point t) {
  return SleepUntil(t, nullptr);
}

void RunContext::WakeSleepers() {
  std::lock_guard lock(engine_.mu_);
  engine_.cv_.notify_all();
}

Status RunContext::SleepUntil(std::chrono::system_clock::time_point t,
                              const std::function<bool()>& woken) {
  std::unique_lock lock(engine_.mu_);
  for (;;) {
    if (engine_.stopping_ || lease_->lost) {
      lock.unlock();
      return Interruption();
    }
    const auto now = clock().Now();
    if (now >= t || (woken && woken())) return Status::Ok();
    // The clock may be a test's ManualClock, which moves without notifying anyone: look again
    // at least every poll interval.
    auto wait =
        std::min<std::chrono::system_clock::duration>(t - now, engine_.options_.poll_interval);
    engine_.cv_.wait_for(lock, wait);
  }
}

// --- WorkflowEngine -----------------------------------------------------------------------

WorkflowEngine::WorkflowEngine(db::Database& db, EngineOptions options)
    : db_(db),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClock()),
      owner_(options_.owner.empty() ? DefaultOwner() : options_.owner) {}

WorkflowEngine::~WorkflowEngine() { Stop(); }

void WorkflowEngine::Register(std::string name, WorkflowFn fn) {
  std::lock_guard lock(mu_);
  workflows_[std::move(name)] = std::move(fn);
}

int64_t WorkflowEngine::NowMillis() const { return ToMillis(clock_.Now()); }

int64_t WorkflowEngine::LeaseUntilMillis() const {
  return NowMillis() + options_.lease_duration.count();
}

bool WorkflowEngine::stopping() const {
  std::lock_guard lock(mu_);
  return stopping_;
}

Result<std::string> WorkflowEngine::Start(std::string_view workflow, std::string_view key,
                                          std::string_view input) {
  const std::string id = NewId("run");
  const int64_t now = NowMillis();
  Status s;
  // Two runs started at once with one key may pick the same sequence number; the loser of the
  // UNIQUE (workflow_key, key_seq) race tries again with the next one.
  for (int attempt = 0; attempt < 10; ++attempt) {
    s = db_.WithTransaction([&](Executor& tx) -> Status {
      SLIPWAY_ASSIGN_OR_RETURN(
          auto row, tx.QueryRow("SELECT COALESCE(MAX(key_seq), 0) AS seq FROM workflow_runs "
                                "WHERE workflow_key = $1",
                                {key}));
      const int64_t seq = (row ? (*row)["seq"].AsInt() : 0) + 1;
      return tx
          .Exec(
              "INSERT INTO workflow_runs (id, workflow, workflow_key, key_seq, input, status, "
              "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
              {id, workflow, key, seq, input, now})
          .status();
    });
    if (s.code() != Code::kAlreadyExists) break;
  }
  if (!s.ok()) {
    return s.WithContext("starting a run of workflow \"" + std::string(workflow) + "\"");
  }
  {
    std::lock_guard lock(mu_);
    ++wakeups_;
  }
  cv_.notify_all();
  return id;
}

Result<RunRecord> WorkflowEngine::GetRun(std::string_view run_id) {
  SLIPWAY_ASSIGN_OR_RETURN(auto row,
                           db_.QueryRow("SELECT id, workflow, workflow_key, input, status, output, "
                                        "error_code, error, owner, claims, created_at, updated_at, "
                                        "finished_at FROM workflow_runs WHERE id = $1",
                                        {run_id}));
  if (!row) {
    return Status::NotFound("there is no workflow run \"" + std::string(run_id) +
                            "\"; check the id.");
  }
  const db::Row& r = *row;
  RunRecord run;
  run.id = r["id"].AsText();
  run.workflow = r["workflow"].AsText();
  run.key = r["workflow_key"].AsText();
  run.input = r["input"].AsText();
  run.status = ParseRunStatus(r["status"].AsText());
  run.output = r["output"].AsText();
  if (run.status == RunStatus::kFailed) run.error = StoredError(r["error_code"], r["error"]);
  run.owner = r["owner"].AsText();
  run.claims = r["claims"].AsInt();
  run.created_at = FromMillis(r["created_at"].AsInt());
  run.updated_at = FromMillis(r["updated_at"].AsInt());
  if (auto f = r["finished_at"].AsOptionalInt()) run.finished_at = FromMillis(*f);
  return run;
}

Status WorkflowEngine::StartWorkers() {
  std::lock_guard lock(mu_);
  if (started_) {
    return Status::FailedPrecondition("the workflow engine's workers are already running.");
  }
  if (workflows_.empty()) {
    return Status::FailedPrecondition(
        "no workflow is registered; call Register before StartWorkers.");
  }
  started_ = true;
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    threads_.emplace_back([this] { WorkerLoop(); });
  }
  threads_.emplace_back([this] { HeartbeatLoop(); });
  return Status::Ok();
}

void WorkflowEngine::Stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    stop_requested_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  // The heartbeat is the last thread: it keeps the leases of step bodies still finishing.
  for (size_t i = 0; i + 1 < threads.size(); ++i) threads[i].join();
  {
    std::lock_guard lock(mu_);
    heartbeat_stop_ = true;
  }
  cv_.notify_all();
  if (!threads.empty()) threads.back().join();
}

void WorkflowEngine::WorkerLoop() {
  for (;;) {
    if (stopping()) return;
    auto claim = ClaimNext();
    if (claim.ok() && claim->has_value()) {
      Execute(**claim);
      continue;
    }
    if (!claim.ok()) {
      spdlog::warn("workflow engine {}: cannot look for runnable runs: {} (trying again)", owner_,
                   claim.status().ToString());
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, options_.poll_interval, [&] { return stopping_ || wakeups_ > 0; });
    if (wakeups_ > 0) --wakeups_;
  }
}

void WorkflowEngine::HeartbeatLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait_for(lock, options_.heartbeat_interval, [&] { return heartbeat_stop_; });
    if (heartbeat_stop_) return;
    auto leases = active_;
    lock.unlock();
    for (const auto& lease : leases) {
      if (lease->lost) continue;
      auto n = db_.Exec(
          "UPDATE workflow_runs SET lease_until = $1 "
          "WHERE id = $2 AND owner = $3 AND claims = $4 AND status = 'running'",
          {LeaseUntilMillis(), lease->run_id, owner_, lease->claims});
      if (!n.ok()) {
        // Not lost yet: the lease may still be valid, and the next beat tries again.
        spdlog::warn("workflow engine {}: cannot renew the lease of run {}: {}", owner_,
                     lease->run_id, n.status().ToString());
      } else if (*n == 0) {
        lease->lost = true;
        cv_.notify_all();
      }
    }
    lock.lock();
  }
}

Result<std::optional<WorkflowEngine::Claim>> WorkflowEngine::ClaimNext() {
  std::vector<std::string> names;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, fn] : workflows_) names.push_back(name);
  }
  // Runnable: pending, or running under an expired lease (its engine died or hung), and no
  // earlier run with the same key still unfinished. On PostgreSQL, SKIP LOCKED lets engines in
  // other processes claim other runs at the same time instead of queueing on this one.
  std::string sql =
      "SELECT r.id, r.workflow, r.workflow_key, r.input FROM workflow_runs r "
      "WHERE (r.status = 'pending' OR (r.status = 'running' AND r.lease_until < $1)) "
      "AND r.workflow IN (";
  db::Params params{NowMillis()};
  for (size_t i = 0; i < names.size(); ++i) {
    sql += (i ? ", $" : "$") + std::to_string(i + 2);
    params.emplace_back(names[i]);
  }
  sql +=
      ") AND NOT EXISTS (SELECT 1 FROM workflow_runs e WHERE e.workflow_key = r.workflow_key "
      "AND e.key_seq < r.key_seq AND e.status IN ('pending', 'running')) "
      "ORDER BY r.created_at, r.key_seq LIMIT 1";
  if (db_.dialect() == db::Dialect::kPostgres) sql += " FOR UPDATE OF r SKIP LOCKED";

  std::optional<Claim> claim;
  Status s = db_.WithTransaction(
      [&](Executor& tx) -> Status {
        claim.reset();
        SLIPWAY_ASSIGN_OR_RETURN(auto rows, tx.Query(sql, params));
        if (rows.empty()) return Status::Ok();
        const db::Row& r = rows.front();
        // The claim re-checks that the run is still claimable, so two engines can never both
        // win it even where the row lock above does not apply; the loser finds nothing.
        SLIPWAY_ASSIGN_OR_RETURN(
            auto updated,
            tx.QueryRow("UPDATE workflow_runs SET status = 'running', owner = $1, "
                        "lease_until = $2, claims = claims + 1, updated_at = $3 "
                        "WHERE id = $4 AND (status = 'pending' OR "
                        "(status = 'running' AND lease_until < $5)) RETURNING claims",
                        {owner_, LeaseUntilMillis(), NowMillis(), r["id"], params[0]}));
        if (!updated) return Status::Ok();
        claim = Claim{r["id"].AsText(), r["workflow"].AsText(), r["workflow_key"].AsText(),
                      r["input"].AsText(), (*updated)["claims"].AsInt()};
        return Status::Ok();
      },
      Isolation::kReadCommitted);
  if (!s.ok()) return s;
  return claim;
}

void WorkflowEngine::Execute(const Claim& claim) {
  auto lease = std::make_shared<LeaseState>(claim.id, claim.claims);
  WorkflowFn fn;
  {
    std::lock_guard lock(mu_);
    fn = workflows_.at(claim.workflow);
    active_.push_back(lease);
  }
  RunContext ctx(*this, lease, claim.id, claim.workflow, claim.key, claim.input);
  Status result;
  try {
    result = fn(ctx);
  } catch (const std::exception& e) {
    result = Status::Internal("the workflow \"" + claim.workflow +
                              "\" threw an exception (a bug in the workflow): " + e.what());
  } catch (...) {
    result = Status::Internal("the workflow \"" + claim.workflow +
                              "\" threw an exception (a bug in the workflow).");
  }
  {
    std::lock_guard lock(mu_);
    std::erase(active_, lease);
  }
  if (lease->lost) return;  // the run is another engine's now

  if (ctx.canceled_) {
    // Interrupted (stopping, or the journal could not be written): hand the run back now
    // rather than after the lease would have expired.
    auto n = db_.Exec(
        "UPDATE workflow_runs SET owner = NULL, lease_until = 0, updated_at = $4 "
        "WHERE id = $1 AND owner = $2 AND claims = $3 AND status = 'running'",
        {claim.id, owner_, claim.claims, NowMillis()});
    if (!n.ok()) {
      spdlog::warn(
          "workflow engine {}: cannot release run {} ({}); it resumes when its lease "
          "expires",
          owner_, claim.id, n.status().ToString());
    }
    return;
  }
  const int64_t now = NowMillis();
  db::Value output, code, error;
  if (result.ok()) {
    output = ctx.output_;
  } else {
    code = CodeName(result.code());
    error = result.message();
  }
  auto n = db_.Exec(
      "UPDATE workflow_runs SET status = $1, output = $2, error_code = $3, error = $4, "
      "owner = NULL, lease_until = 0, finished_at = $5, updated_at = $5 "
      "WHERE id = $6 AND owner = $7 AND claims = $8 AND status = 'running'",
      {result.ok() ? "succeeded" : "failed", output, code, error, now, claim.id, owner_,
       claim.claims});
  if (!n.ok()) {
    spdlog::warn(
        "workflow engine {}: cannot record the end of run {} ({}); it is replayed from "
        "its journal when its lease expires",
        owner_, claim.id, n.status().ToString());
  }
}

}  // namespace slipway::workflow
