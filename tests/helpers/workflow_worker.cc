// A workflow worker process for tests that kill and restart workers (SIGKILL mid-run) or run
// several of them against one database.
//
//   workflow_worker DB_URL [--workers N] [--steps K] [--step-ms M] [--mode plain|tx]
//                   [--lease-ms L] [--heartbeat-ms H] [--poll-ms P]
//
// Registers the workflow "marker": K steps named step-0 .. step-K-1; each sleeps M ms and then
// appends (run_id, step, pid, started_at, finished_at) to the table worker_step_log, which the
// test creates. In plain mode the row is written by the step body on its own (so every
// execution of a body is counted, even one whose journal entry is never written); in tx mode
// it is written through TransactionalStep (so it commits exactly when the step is journaled).
// Prints "ready" once its workers run; SIGTERM or SIGINT stops it gracefully (exit 0).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "db/migrations.h"
#include "workflow/engine.h"

namespace {

using namespace slipway;

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int Usage() {
  std::fprintf(stderr,
               "usage: workflow_worker DB_URL [--workers N] [--steps K] [--step-ms M] "
               "[--mode plain|tx] [--lease-ms L] [--heartbeat-ms H] [--poll-ms P]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  const std::string url = argv[1];
  int steps = 3, step_ms = 100, workers = 2;
  bool transactional = false;
  workflow::EngineOptions options;
  options.poll_interval = std::chrono::milliseconds(20);
  options.lease_duration = std::chrono::milliseconds(2000);
  options.heartbeat_interval = std::chrono::milliseconds(200);
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    std::string value = argv[i + 1];
    if (flag == "--workers")
      workers = std::atoi(value.c_str());
    else if (flag == "--steps")
      steps = std::atoi(value.c_str());
    else if (flag == "--step-ms")
      step_ms = std::atoi(value.c_str());
    else if (flag == "--mode")
      transactional = value == "tx";
    else if (flag == "--lease-ms")
      options.lease_duration = std::chrono::milliseconds(std::atoi(value.c_str()));
    else if (flag == "--heartbeat-ms")
      options.heartbeat_interval = std::chrono::milliseconds(std::atoi(value.c_str()));
    else if (flag == "--poll-ms")
      options.poll_interval = std::chrono::milliseconds(std::atoi(value.c_str()));
    else
      return Usage();
  }
  options.workers = workers;
  options.owner = "worker-" + std::to_string(getpid());

  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto db = db::OpenMain(url);
  if (!db.ok()) {
    std::fprintf(stderr, "workflow_worker: %s\n", db.status().ToString().c_str());
    return 1;
  }
  db::Database& database = **db;
  const int64_t pid = getpid();
  const char* kInsert =
      "INSERT INTO worker_step_log (run_id, step, pid, started_at, finished_at) "
      "VALUES ($1, $2, $3, $4, $5)";

  workflow::WorkflowEngine engine(database, options);
  engine.Register("marker", [&](workflow::RunContext& ctx) -> Status {
    for (int i = 0; i < steps; ++i) {
      const std::string name = "step-" + std::to_string(i);
      Result<std::string> done = Status::Unknown("not run");
      if (transactional) {
        done = ctx.TransactionalStep(name, [&](db::Executor& tx) -> Result<std::string> {
          const int64_t started = NowMillis();
          std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
          SLIPWAY_RETURN_IF_ERROR(
              tx.Exec(kInsert, {ctx.run_id(), name, pid, started, NowMillis()}).status());
          return name;
        });
      } else {
        done = ctx.Step(name, [&]() -> Result<std::string> {
          const int64_t started = NowMillis();
          std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
          SLIPWAY_RETURN_IF_ERROR(
              database.Exec(kInsert, {ctx.run_id(), name, pid, started, NowMillis()}).status());
          return name;
        });
      }
      if (!done.ok()) return done.status();
    }
    ctx.SetOutput("done");
    return Status::Ok();
  });
  if (Status s = engine.StartWorkers(); !s.ok()) {
    std::fprintf(stderr, "workflow_worker: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  engine.Stop();
  return 0;
}
