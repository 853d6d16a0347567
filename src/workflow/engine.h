// Durable execution: workflows whose steps survive crashes, restarts and takeovers.
//
// A run is a registered workflow function, a key and an input. The function is written as
// ordinary code that calls ctx.Step(...) for each piece of work; each step's result is
// journaled in the main database before Step returns, so when a run is executed again (after a
// crash, a restart or a takeover) finished steps return their journaled result without running
// again and the run resumes at its first unfinished step. The function itself must therefore
// be deterministic between steps: same input and same journaled results, same steps in the
// same order, each with a unique name within the run.
//
// Promises:
//  - A finished step never runs again; its result (or terminal error) is replayed.
//  - Runs with the same key execute one at a time, in creation order (a run becomes runnable
//    only when every earlier run with its key has succeeded or failed); runs with different
//    keys execute concurrently, up to EngineOptions::workers per engine.
//  - Several engines (threads of one process or several processes on one PostgreSQL or one
//    SQLite file) share the runs through leases. An execution holds its run's lease, renewed
//    by a heartbeat; a lease that expires (its process died or hung) is taken over. Journal
//    writes are fenced by the lease: an execution that lost its run cannot record a step, and
//    stops at its next Step, so a run is never executed by two engines at once past a step
//    boundary.
//  - A step body runs at least once per journaled result: if the process dies after the body
//    finished but before the journal was written, the body runs again on resumption. Use
//    TransactionalStep when the body's effects are database writes that must happen exactly
//    once: they commit in the same transaction as the journal entry.
//  - Deadlines and sleeps are journaled as absolute instants: a restart does not reset them.
//
// Thread-safety: all methods of WorkflowEngine are thread-safe. A RunContext belongs to the
// thread executing its run.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "db/database.h"

namespace slipway::workflow {

enum class RunStatus { kPending, kRunning, kSucceeded, kFailed };
std::string_view RunStatusName(RunStatus status);

struct RunRecord {
  std::string id;
  std::string workflow;
  std::string key;
  std::string input;
  RunStatus status = RunStatus::kPending;
  std::string output;  // what the workflow passed to SetOutput, once succeeded
  Status error;        // why it failed, once failed
  std::string owner;   // the engine holding the lease while running
  int64_t claims = 0;  // how many times an engine started executing it
  std::chrono::system_clock::time_point created_at;
  std::chrono::system_clock::time_point updated_at;
  std::optional<std::chrono::system_clock::time_point> finished_at;
};

// Whether a step's failure is worth retrying: kUnavailable, kResourceExhausted, kAborted and
// kDeadlineExceeded are transient (the same call may succeed later, as in Connect's and gRPC's
// retry rules); every other code is terminal. A step that wants a failure to be terminal
// returns a terminal code (kFailedPrecondition, kInvalidArgument, ...), see Terminal().
bool IsTransient(const Status& status);

// The same failure, made terminal: a transient code becomes kFailedPrecondition with the same
// message (a builder that is reachable but rejects the Dockerfile should not be retried).
Status Terminal(Status status);

// How a step retries transient failures: attempt n (from 1) waits
// min(initial_backoff * 2^(n-1), max_backoff) before attempt n+1. Attempts are journaled, so
// the bound holds across restarts.
struct RetryPolicy {
  int max_attempts = 5;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{std::chrono::seconds(30)};
};

class WorkflowEngine;
struct LeaseState;

// What a workflow function sees of its run. Not to be used from inside a step body (steps do
// not nest).
class RunContext {
 public:
  const std::string& run_id() const { return run_id_; }
  const std::string& workflow() const { return workflow_; }
  const std::string& key() const { return key_; }
  const std::string& input() const { return input_; }
  Clock& clock() const;

  // Runs fn once for this run: the journaled result if the step already finished, otherwise
  // fn's result, journaled before returning. Transient failures are retried per policy;
  // terminal ones (or the last transient one) are journaled and returned, and replay as the
  // same error. Returns kCanceled when the engine is stopping or the run was taken over; the
  // workflow function should then return promptly (its status is ignored and the run resumes
  // elsewhere). Step names starting with '@' are reserved.
  Result<std::string> Step(std::string_view name, const std::function<Result<std::string>()>& fn,
                           const RetryPolicy& policy = {});

  // Like Step, but fn runs inside the transaction that journals the step: its writes through
  // tx commit if and only if the step is recorded as succeeded. fn may run again if the
  // transaction conflicts (PostgreSQL), so it must do nothing outside tx that cannot repeat.
  Result<std::string> TransactionalStep(
      std::string_view name, const std::function<Result<std::string>(db::Executor& tx)>& fn,
      const RetryPolicy& policy = {});

  // An instant `after` from the first time this run reached this deadline; the same instant on
  // every later execution (a restart does not move a 5-minute deadline).
  Result<std::chrono::system_clock::time_point> Deadline(std::string_view name,
                                                         std::chrono::milliseconds after);

  // A durable timer: returns once the clock passes the instant fixed the first time the run
  // reached this sleep. kCanceled when the engine stops or the run is taken over first.
  Status Sleep(std::string_view name, std::chrono::milliseconds duration);
  // Waits (not journaled) until the clock reaches t; kCanceled as for Sleep. Unlike the other
  // calls it may be used inside a step body (with clock()), for a step that polls until a
  // deadline: it journals nothing, and a kCanceled it returns, passed on by the body, makes
  // the step record nothing, so the run resumes that step later.
  Status SleepUntil(std::chrono::system_clock::time_point t);
  // The same, but also returns Ok as soon as woken() is true: a step that waits on a clock and
  // on news from another thread (a stream) at once. The thread that makes woken() true calls
  // WakeSleepers() so it is looked at without delay. woken runs with the engine's lock held:
  // it may only read (an atomic), never call into the engine.
  Status SleepUntil(std::chrono::system_clock::time_point t, const std::function<bool()>& woken);
  // Makes every SleepUntil of this engine look at its clock and woken() again. Unlike the rest
  // of RunContext, callable from any thread while the run's step is in progress.
  void WakeSleepers();

  // Recorded on the run when the workflow function returns ok.
  void SetOutput(std::string output) { output_ = std::move(output); }

 private:
  friend class WorkflowEngine;
  RunContext(WorkflowEngine& engine, std::shared_ptr<LeaseState> lease, std::string run_id,
             std::string workflow, std::string key, std::string input);

  using Body = std::function<Result<std::string>(db::Executor* tx)>;
  Result<std::string> RunStep(std::string_view name, const RetryPolicy& policy, bool transactional,
                              const Body& body);
  // Runs fn in a transaction that first checks (and extends) this execution's lease.
  Status Fenced(const std::function<Status(db::Executor& tx)>& fn);
  Status Interruption();  // kCanceled with the reason, and remembers that it happened
  bool interrupted() const;

  WorkflowEngine& engine_;
  std::shared_ptr<LeaseState> lease_;
  std::string run_id_, workflow_, key_, input_;
  std::string output_;
  bool canceled_ = false;  // a context call returned kCanceled: the run must be released
};

using WorkflowFn = std::function<Status(RunContext& ctx)>;

struct EngineOptions {
  // Runs executed concurrently by this engine (each on its own thread).
  int workers = 4;
  // How often an idle worker looks for runnable runs (Start in the same engine wakes it at
  // once), and the longest a sleeping run waits between looks at the clock.
  std::chrono::milliseconds poll_interval{500};
  // How long a claimed run stays ours without a heartbeat, and how often we renew it.
  std::chrono::milliseconds lease_duration{std::chrono::seconds(30)};
  std::chrono::milliseconds heartbeat_interval{std::chrono::seconds(5)};
  // Names this engine in leases; defaults to "<host>/<pid>/<random>".
  std::string owner;
  // Time for leases, deadlines and sleeps; SystemClock() when null.
  Clock* clock = nullptr;
};

class WorkflowEngine {
 public:
  // db must hold the main schema (db::OpenMain) and outlive the engine.
  explicit WorkflowEngine(db::Database& db, EngineOptions options = {});
  ~WorkflowEngine();  // Stop()
  WorkflowEngine(const WorkflowEngine&) = delete;
  WorkflowEngine& operator=(const WorkflowEngine&) = delete;

  // Registers a workflow this engine can execute; call before StartWorkers. Runs of workflows
  // an engine has not registered are left for engines that have.
  void Register(std::string name, WorkflowFn fn);

  // Creates a pending run; returns its id. Works without workers (an engine may only enqueue).
  Result<std::string> Start(std::string_view workflow, std::string_view key,
                            std::string_view input);

  Result<RunRecord> GetRun(std::string_view run_id);

  // Starts the worker threads and the heartbeat. Returns at once.
  Status StartWorkers();

  // Stops claiming runs, wakes sleeping runs (their Sleep returns kCanceled), waits for the
  // step bodies in progress to return, and releases the unfinished runs' leases so another
  // engine resumes them at once. Idempotent.
  void Stop();

  const std::string& owner() const { return owner_; }

  // True from the moment Stop() begins: step bodies doing long work (a build) may watch it and
  // return early; the engine records nothing for a step interrupted this way.
  const std::atomic<bool>& stop_requested() const { return stop_requested_; }

 private:
  friend class RunContext;
  struct Claim;

  void WorkerLoop();
  void HeartbeatLoop();
  Result<std::optional<Claim>> ClaimNext();
  void Execute(const Claim& claim);
  int64_t NowMillis() const;
  int64_t LeaseUntilMillis() const;
  bool stopping() const;

  db::Database& db_;
  const EngineOptions options_;
  Clock& clock_;
  const std::string owner_;
  std::map<std::string, WorkflowFn, std::less<>> workflows_;

  mutable std::mutex mu_;
  std::condition_variable cv_;   // Start, Stop, lost leases; sleeping runs and idle workers wait
  bool stopping_ = false;        // workers stop claiming; sleeping runs wake up
  std::atomic<bool> stop_requested_{false};  // stopping_, readable without the lock
  bool heartbeat_stop_ = false;  // set after the workers have returned
  bool started_ = false;
  int wakeups_ = 0;  // runs started in this engine and not yet looked for by a worker
  std::vector<std::shared_ptr<LeaseState>> active_;
  std::vector<std::thread> threads_;
};

}  // namespace slipway::workflow
