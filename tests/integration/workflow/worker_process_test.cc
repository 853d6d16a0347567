// Durable workflows across real processes (tests/helpers/workflow_worker.cc), on SQLite and
// PostgreSQL: a worker SIGKILLed mid-run and restarted, two workers sharing one database.
#include <signal.h>

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "db/migrations.h"
#include "support/postgres.h"
#include "support/test_support.h"
#include "workflow/engine.h"

namespace slipway::workflow {
namespace {

using namespace std::chrono_literals;
using testing::TestDriver;

template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

class WorkflowProcessTest : public ::testing::TestWithParam<TestDriver> {
 protected:
  void SetUp() override {
    url_ = testing::FreshDatabaseUrl(GetParam(), dir_.path());
    auto db = db::OpenMain(url_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    ASSERT_TRUE(db_->ExecScript("CREATE TABLE worker_step_log (run_id TEXT NOT NULL, "
                                "step TEXT NOT NULL, pid BIGINT NOT NULL, "
                                "started_at BIGINT NOT NULL, finished_at BIGINT NOT NULL)")
                    .ok());
    enqueuer_ = std::make_unique<WorkflowEngine>(*db_);  // no workers: only starts runs
  }

  std::unique_ptr<testing::Process> Worker(const std::string& name,
                                           std::vector<std::string> flags) {
    std::vector<std::string> argv = {std::string(SLIPWAY_BUILD_DIR) + "/workflow_worker", url_};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return std::make_unique<testing::Process>(argv, std::map<std::string, std::string>{},
                                              (dir_.path() / (name + ".log")).string());
  }

  std::string WorkerLog(const std::string& name) {
    return testing::ReadFile(dir_.path() / (name + ".log"));
  }

  int64_t Count(std::string_view sql, const db::Params& params = {}) {
    auto row = db_->QueryRow(sql, params);
    EXPECT_TRUE(row.ok() && row->has_value()) << row.status().ToString();
    return row.ok() && row->has_value() ? (**row)[0].AsInt() : -1;
  }

  bool AllSucceeded(const std::vector<std::string>& ids) {
    for (const auto& id : ids) {
      auto run = enqueuer_->GetRun(id);
      if (!run.ok() || run->status != RunStatus::kSucceeded) return false;
    }
    return true;
  }

  // Every (run, step) executed exactly once, and every run's steps all there.
  void ExpectEachStepExactlyOnce(const std::vector<std::string>& ids, int steps) {
    auto dups = db_->Query(
        "SELECT run_id, step, COUNT(*) AS n FROM worker_step_log "
        "GROUP BY run_id, step HAVING COUNT(*) > 1");
    ASSERT_TRUE(dups.ok()) << dups.status().ToString();
    for (const auto& row : *dups) {
      ADD_FAILURE() << "step " << row["step"].AsText() << " of run " << row["run_id"].AsText()
                    << " ran " << row["n"].AsInt() << " times";
    }
    EXPECT_EQ(Count("SELECT COUNT(*) FROM worker_step_log"),
              static_cast<int64_t>(ids.size()) * steps);
  }

  // Runs with one key: each run's steps all end before the next run's first step starts.
  void ExpectNoOverlapWithinKeys() {
    auto rows = db_->Query(
        "SELECT r.workflow_key AS k, r.key_seq AS seq, MIN(l.started_at) AS first_start, "
        "MAX(l.finished_at) AS last_end FROM worker_step_log l "
        "JOIN workflow_runs r ON r.id = l.run_id "
        "GROUP BY r.workflow_key, r.key_seq ORDER BY r.workflow_key, r.key_seq");
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    for (size_t i = 0; i + 1 < rows->size(); ++i) {
      const auto& a = (*rows)[i];
      const auto& b = (*rows)[i + 1];
      if (a["k"].AsText() != b["k"].AsText()) continue;
      EXPECT_LE(a["last_end"].AsInt(), b["first_start"].AsInt())
          << "runs " << a["seq"].AsInt() << " and " << b["seq"].AsInt() << " of key "
          << a["k"].AsText() << " overlapped";
    }
  }

  testing::TempDir dir_;
  std::string url_;
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<WorkflowEngine> enqueuer_;
};

TEST_P(WorkflowProcessTest, SigkilledWorkerResumesAfterRestartAndRunsEachStepOnce) {
  constexpr int kSteps = 6;
  auto id = enqueuer_->Start("marker", "project-1", "{}");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  const std::vector<std::string> flags = {
      "--workers",  "1",    "--steps",        std::to_string(kSteps),
      "--step-ms",  "250",  "--mode",         "tx",
      "--lease-ms", "1500", "--heartbeat-ms", "200",
      "--poll-ms",  "20"};
  auto first = Worker("first", flags);
  ASSERT_TRUE(Eventually([&] { return Count("SELECT COUNT(*) FROM worker_step_log") >= 2; }, 30s))
      << WorkerLog("first");
  first->Signal(SIGKILL);
  EXPECT_EQ(first->Wait(), 128 + SIGKILL);
  const int64_t done_before = Count("SELECT COUNT(*) FROM worker_step_log");
  ASSERT_GE(done_before, 2);
  ASSERT_LT(done_before, kSteps) << "the worker finished before it was killed";
  EXPECT_EQ(enqueuer_->GetRun(*id)->status, RunStatus::kRunning);

  auto second = Worker("second", flags);
  ASSERT_TRUE(Eventually([&] { return AllSucceeded({*id}); }, 30s)) << WorkerLog("second");
  ExpectEachStepExactlyOnce({*id}, kSteps);

  // The finished steps stayed with the killed worker; the restarted one did only the rest.
  auto rows = db_->Query("SELECT step, pid FROM worker_step_log ORDER BY started_at");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), static_cast<size_t>(kSteps));
  for (int i = 0; i < kSteps; ++i) {
    EXPECT_EQ((*rows)[i]["step"].AsText(), "step-" + std::to_string(i));
    EXPECT_EQ((*rows)[i]["pid"].AsInt(), i < done_before ? first->pid() : second->pid())
        << "step-" << i;
  }
  EXPECT_EQ(enqueuer_->GetRun(*id)->claims, 2);
  second->Signal(SIGTERM);
  EXPECT_EQ(second->Wait(), 0) << WorkerLog("second");
}

TEST_P(WorkflowProcessTest, TwoWorkerProcessesShareRunsAndNeverRunAStepTwice) {
  constexpr int kRuns = 40;
  constexpr int kSteps = 3;
  std::vector<std::string> ids;
  for (int i = 0; i < kRuns; ++i) {
    auto id = enqueuer_->Start("marker", "project-" + std::to_string(i % 10), "{}");
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
  }
  // Plain steps: every execution of a step body is logged, journaled or not, so a step run by
  // both processes would show up twice.
  // Many workers polling often: claims collide, which is what this test is about.
  const std::vector<std::string> flags = {
      "--workers",  "4",    "--steps",        std::to_string(kSteps),
      "--step-ms",  "10",   "--mode",         "plain",
      "--lease-ms", "5000", "--heartbeat-ms", "200",
      "--poll-ms",  "2"};
  auto a = Worker("a", flags);
  auto b = Worker("b", flags);
  ASSERT_TRUE(Eventually([&] { return AllSucceeded(ids); }, 60s))
      << WorkerLog("a") << WorkerLog("b");
  ExpectEachStepExactlyOnce(ids, kSteps);
  ExpectNoOverlapWithinKeys();
  EXPECT_EQ(Count("SELECT COUNT(DISTINCT pid) FROM worker_step_log"), 2)
      << "both processes should have executed runs";
  for (const auto& id : ids) EXPECT_EQ(enqueuer_->GetRun(id)->claims, 1);
  a->Signal(SIGTERM);
  b->Signal(SIGTERM);
  EXPECT_EQ(a->Wait(), 0) << WorkerLog("a");
  EXPECT_EQ(b->Wait(), 0) << WorkerLog("b");
}

TEST_P(WorkflowProcessTest, SurvivorFinishesEverythingWhenOneOfTwoWorkersIsKilled) {
  constexpr int kRuns = 8;
  constexpr int kSteps = 4;
  std::vector<std::string> ids;
  for (int i = 0; i < kRuns; ++i) {
    auto id = enqueuer_->Start("marker", "project-" + std::to_string(i % 4), "{}");
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
  }
  const std::vector<std::string> flags = {
      "--workers",  "2",    "--steps",        std::to_string(kSteps),
      "--step-ms",  "100",  "--mode",         "tx",
      "--lease-ms", "1500", "--heartbeat-ms", "200",
      "--poll-ms",  "20"};
  // The victim starts alone so that it surely holds runs mid-way when it dies (a survivor
  // started at the same time could otherwise take every run first on a loaded machine).
  auto victim = Worker("victim", flags);
  ASSERT_TRUE(Eventually(
      [&] {
        return Count("SELECT COUNT(*) FROM worker_step_log WHERE pid = $1", {victim->pid()}) >= 3;
      },
      30s))
      << WorkerLog("victim");
  auto survivor = Worker("survivor", flags);
  victim->Signal(SIGKILL);
  EXPECT_EQ(victim->Wait(), 128 + SIGKILL);
  ASSERT_TRUE(Eventually([&] { return AllSucceeded(ids); }, 60s)) << WorkerLog("survivor");
  ExpectEachStepExactlyOnce(ids, kSteps);
  ExpectNoOverlapWithinKeys();
  survivor->Signal(SIGTERM);
  EXPECT_EQ(survivor->Wait(), 0) << WorkerLog("survivor");
}

INSTANTIATE_TEST_SUITE_P(Workflow, WorkflowProcessTest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) { return testing::TestDriverName(info.param); });

}  // namespace
}  // namespace slipway::workflow
