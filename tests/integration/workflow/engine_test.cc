// Durable workflows in one process, on SQLite and PostgreSQL: journaling, replay, leases and
// takeover, one-at-a-time per key, deadlines across restarts, retries.
#include "workflow/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "db/migrations.h"
#include "support/postgres.h"
#include "support/test_support.h"

namespace slipway::workflow {
namespace {

using namespace std::chrono_literals;
using testing::TestDriver;
using TimePoint = std::chrono::system_clock::time_point;

// Polls until pred holds; false after timeout.
template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds timeout = 20s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

class WorkflowTest : public ::testing::TestWithParam<TestDriver> {
 protected:
  void SetUp() override {
    auto db = db::OpenMain(testing::FreshDatabaseUrl(GetParam(), dir_.path()));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
  }

  EngineOptions Fast(std::string owner, Clock* clock = nullptr) {
    EngineOptions o;
    o.workers = 2;
    o.poll_interval = 10ms;
    o.lease_duration = 5s;
    o.heartbeat_interval = 100ms;
    o.owner = std::move(owner);
    o.clock = clock;
    return o;
  }

  // Waits for the run to succeed or fail and returns it.
  RunRecord Finished(WorkflowEngine& engine, const std::string& id,
                     std::chrono::milliseconds timeout = 20s) {
    RunRecord run;
    bool done = Eventually(
        [&] {
          auto r = engine.GetRun(id);
          if (!r.ok()) return false;
          run = *r;
          return run.status == RunStatus::kSucceeded || run.status == RunStatus::kFailed;
        },
        timeout);
    EXPECT_TRUE(done) << "run " << id << " still " << RunStatusName(run.status);
    return run;
  }

  int64_t Count(std::string_view sql, const db::Params& params = {}) {
    auto row = db_->QueryRow(sql, params);
    EXPECT_TRUE(row.ok() && row->has_value()) << row.status().ToString();
    return row.ok() && row->has_value() ? (**row)[0].AsInt() : -1;
  }

  testing::TempDir dir_;
  std::unique_ptr<db::Database> db_;
};

TEST_P(WorkflowTest, StepsRunInOrderAndAreJournaled) {
  WorkflowEngine engine(*db_, Fast("e1"));
  std::mutex mu;
  std::vector<std::string> order;
  engine.Register("greet", [&](RunContext& ctx) -> Status {
    SLIPWAY_ASSIGN_OR_RETURN(auto a, ctx.Step("a", [&]() -> Result<std::string> {
      std::lock_guard lock(mu);
      order.push_back("a");
      return "A:" + ctx.input();
    }));
    SLIPWAY_ASSIGN_OR_RETURN(auto b, ctx.Step("b", [&]() -> Result<std::string> {
      std::lock_guard lock(mu);
      order.push_back("b");
      return a + "+B";
    }));
    ctx.SetOutput(b);
    return Status::Ok();
  });
  auto id = engine.Start("greet", "project-1", "hello");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(engine.StartWorkers().ok());
  RunRecord run = Finished(engine, *id);
  EXPECT_EQ(run.status, RunStatus::kSucceeded) << run.error.ToString();
  EXPECT_EQ(run.output, "A:hello+B");
  EXPECT_EQ(run.workflow, "greet");
  EXPECT_EQ(run.key, "project-1");
  EXPECT_EQ(run.claims, 1);
  EXPECT_TRUE(run.finished_at.has_value());
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM workflow_steps WHERE run_id = $1 AND status = $2",
                  {*id, "succeeded"}),
            2);
  EXPECT_EQ(engine.GetRun("run_nope").status().code(), Code::kNotFound);
}

TEST_P(WorkflowTest, ExpiredLeaseIsTakenOverAndTheOldExecutionCannotJournal) {
  ManualClock clock(TimePoint(1'700'000'000'000ms));
  std::atomic<int> first{0}, second{0}, third{0};
  std::atomic<bool> a_in_second{false}, release_a{false};
  auto workflow = [&](std::string who) {
    return [&, who](RunContext& ctx) -> Status {
      SLIPWAY_RETURN_IF_ERROR(ctx.Step("first",
                                       [&]() -> Result<std::string> {
                                         ++first;
                                         return std::string("1");
                                       })
                                  .status());
      SLIPWAY_ASSIGN_OR_RETURN(auto by, ctx.Step("second", [&]() -> Result<std::string> {
        if (who == "a") {
          a_in_second = true;
          while (!release_a) std::this_thread::sleep_for(2ms);  // a hung engine
        }
        ++second;
        return who;
      }));
      SLIPWAY_RETURN_IF_ERROR(ctx.Step("third",
                                       [&]() -> Result<std::string> {
                                         ++third;
                                         return std::string("3");
                                       })
                                  .status());
      ctx.SetOutput(by);
      return Status::Ok();
    };
  };
  EngineOptions a_opts = Fast("engine-a", &clock);
  a_opts.workers = 1;  // its only worker hangs, so only b can take the run over
  a_opts.lease_duration = 30s;
  a_opts.heartbeat_interval = 1h;  // a hung engine renews nothing
  EngineOptions b_opts = a_opts;
  b_opts.owner = "engine-b";
  WorkflowEngine a(*db_, a_opts);
  WorkflowEngine b(*db_, b_opts);
  a.Register("w", workflow("a"));
  b.Register("w", workflow("b"));

  auto id = a.Start("w", "k", "{}");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(a.StartWorkers().ok());
  ASSERT_TRUE(Eventually([&] { return a_in_second.load(); }));
  ASSERT_TRUE(b.StartWorkers().ok());

  // While the lease holds, b leaves the run alone.
  std::this_thread::sleep_for(300ms);
  auto held = b.GetRun(*id);
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->owner, "engine-a");
  EXPECT_EQ(held->claims, 1);

  clock.Advance(31s);
  RunRecord run = Finished(b, *id);
  EXPECT_EQ(run.status, RunStatus::kSucceeded) << run.error.ToString();
  EXPECT_EQ(run.output, "b");
  EXPECT_EQ(run.claims, 2);
  EXPECT_EQ(first.load(), 1);  // journaled by a, replayed by b
  EXPECT_EQ(second.load(), 1);
  EXPECT_EQ(third.load(), 1);

  // The hung execution wakes up: its step body finishes but its journal write is refused.
  release_a = true;
  ASSERT_TRUE(Eventually([&] { return second.load() == 2; }));
  std::this_thread::sleep_for(200ms);
  a.Stop();
  b.Stop();
  auto after = b.GetRun(*id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->status, RunStatus::kSucceeded);
  EXPECT_EQ(after->output, "b");
  auto journal = db_->QueryRow("SELECT output FROM workflow_steps WHERE run_id = $1 AND name = $2",
                               {*id, "second"});
  ASSERT_TRUE(journal.ok() && journal->has_value());
  EXPECT_EQ((**journal)["output"].AsText(), "b");
  EXPECT_EQ(third.load(), 1);
}

TEST_P(WorkflowTest, DeadlinesAndSleepsSurviveARestart) {
  const TimePoint t0(1'700'000'000'000ms);
  ManualClock clock(t0);
  std::mutex mu;
  std::vector<TimePoint> deadlines;
  std::atomic<int> after{0};
  auto workflow = [&](RunContext& ctx) -> Status {
    SLIPWAY_ASSIGN_OR_RETURN(auto deadline, ctx.Deadline("instances-ready", 5min));
    {
      std::lock_guard lock(mu);
      deadlines.push_back(deadline);
    }
    SLIPWAY_RETURN_IF_ERROR(ctx.Sleep("wait", 5min));
    return ctx
        .Step("after",
              [&]() -> Result<std::string> {
                ++after;
                return std::string();
              })
        .status();
  };
  auto seen = [&] {
    std::lock_guard lock(mu);
    return deadlines.size();
  };
  // The test moves the clock by minutes: leases must outlast those jumps, or the engine would
  // rightly treat its own run as abandoned.
  auto options = [&](std::string owner) {
    EngineOptions o = Fast(std::move(owner), &clock);
    o.lease_duration = 1h;
    return o;
  };

  std::string id;
  {
    WorkflowEngine first(*db_, options("first"));
    first.Register("wait", workflow);
    auto started = first.Start("wait", "k", "{}");
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    id = *started;
    ASSERT_TRUE(first.StartWorkers().ok());
    ASSERT_TRUE(Eventually([&] { return seen() == 1; }));
    ASSERT_TRUE(Eventually(
        [&] { return Count("SELECT COUNT(*) FROM workflow_steps WHERE run_id = $1", {id}) == 2; }));
    auto begin = std::chrono::steady_clock::now();
    first.Stop();  // wakes the sleeping run and releases it
    EXPECT_LT(std::chrono::steady_clock::now() - begin, 2s);
    auto run = first.GetRun(id);
    ASSERT_TRUE(run.ok());
    EXPECT_EQ(run->status, RunStatus::kRunning);
    EXPECT_EQ(run->owner, "");  // released, not left to expire
  }

  clock.Advance(2min);
  WorkflowEngine second(*db_, options("second"));
  second.Register("wait", workflow);
  ASSERT_TRUE(second.StartWorkers().ok());
  ASSERT_TRUE(Eventually([&] { return seen() == 2; }));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(deadlines[0], t0 + 5min);
    EXPECT_EQ(deadlines[1], t0 + 5min);  // not t0 + 2min + 5min
  }
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(second.GetRun(id)->status, RunStatus::kRunning);
  EXPECT_EQ(after.load(), 0);

  clock.Advance(3min);  // exactly the journaled instant: the sleep ends now, not 2 minutes later
  RunRecord run = Finished(second, id);
  EXPECT_EQ(run.status, RunStatus::kSucceeded) << run.error.ToString();
  EXPECT_EQ(after.load(), 1);
}

TEST_P(WorkflowTest, RunsWithOneKeyNeverOverlapAndKeepCreationOrder) {
  EngineOptions opts = Fast("e");
  opts.workers = 4;
  WorkflowEngine engine(*db_, opts);
  struct Span {
    TimePoint start, end;
  };
  std::mutex mu;
  std::map<std::string, Span> spans;  // by run id: first step start .. last step end
  engine.Register("w", [&](RunContext& ctx) -> Status {
    for (int i = 0; i < 3; ++i) {
      SLIPWAY_RETURN_IF_ERROR(
          ctx.Step("s" + std::to_string(i),
                   [&]() -> Result<std::string> {
                     auto start = std::chrono::system_clock::now();
                     std::this_thread::sleep_for(15ms);
                     auto end = std::chrono::system_clock::now();
                     std::lock_guard lock(mu);
                     auto [it, fresh] = spans.try_emplace(ctx.run_id(), Span{start, end});
                     if (!fresh) it->second.end = end;
                     return std::string();
                   })
              .status());
    }
    return Status::Ok();
  });
  std::map<std::string, std::vector<std::string>> created;  // key -> run ids in creation order
  for (int i = 0; i < 4; ++i) {
    for (std::string key : {"p", "q"}) {
      auto id = engine.Start("w", key, "{}");
      ASSERT_TRUE(id.ok()) << id.status().ToString();
      created[key].push_back(*id);
    }
  }
  ASSERT_TRUE(engine.StartWorkers().ok());
  for (auto& [key, ids] : created) {
    for (auto& id : ids) EXPECT_EQ(Finished(engine, id).status, RunStatus::kSucceeded);
  }
  std::lock_guard lock(mu);
  for (auto& [key, ids] : created) {
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      EXPECT_LE(spans[ids[i]].end, spans[ids[i + 1]].start)
          << "runs " << ids[i] << " and " << ids[i + 1] << " of key " << key << " overlapped";
    }
  }
  // Different keys did run side by side (so the check above is not trivially true).
  bool overlapped = false;
  for (auto& p : created["p"]) {
    for (auto& q : created["q"]) {
      if (spans[p].start < spans[q].end && spans[q].start < spans[p].end) overlapped = true;
    }
  }
  EXPECT_TRUE(overlapped);
}

TEST_P(WorkflowTest, TransientFailuresRetryWithBackoffThenSucceed) {
  WorkflowEngine engine(*db_, Fast("e"));
  std::atomic<int> calls{0};
  std::mutex mu;
  std::vector<std::chrono::steady_clock::time_point> at;
  RetryPolicy policy{.max_attempts = 4, .initial_backoff = 40ms, .max_backoff = 1s};
  engine.Register("w", [&](RunContext& ctx) -> Status {
    return ctx
        .Step(
            "flaky",
            [&]() -> Result<std::string> {
              {
                std::lock_guard lock(mu);
                at.push_back(std::chrono::steady_clock::now());
              }
              if (++calls < 3) return Status::Unavailable("the builder is busy");
              return std::string("built");
            },
            policy)
        .status();
  });
  auto id = engine.Start("w", "k", "{}");
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(engine.StartWorkers().ok());
  RunRecord run = Finished(engine, *id);
  EXPECT_EQ(run.status, RunStatus::kSucceeded) << run.error.ToString();
  EXPECT_EQ(calls.load(), 3);
  std::lock_guard lock(mu);
  ASSERT_EQ(at.size(), 3u);
  // Backoff doubles: 40 ms, then 80 ms (retry instants are whole milliseconds: 1 ms slack).
  EXPECT_GE(at[1] - at[0], 39ms);
  EXPECT_GE(at[2] - at[1], 79ms);
  EXPECT_EQ(
      Count("SELECT attempts FROM workflow_steps WHERE run_id = $1 AND name = $2", {*id, "flaky"}),
      3);
}

TEST_P(WorkflowTest, TransientFailuresGiveUpAfterTheAttemptBound) {
  WorkflowEngine engine(*db_, Fast("e"));
  std::atomic<int> calls{0};
  RetryPolicy policy{.max_attempts = 3, .initial_backoff = 5ms, .max_backoff = 10ms};
  engine.Register("w", [&](RunContext& ctx) -> Status {
    return ctx
        .Step(
            "down",
            [&]() -> Result<std::string> {
              ++calls;
              return Status::Unavailable("the Docker daemon is not answering; start dockerd.");
            },
            policy)
        .status();
  });
  auto id = engine.Start("w", "k", "{}");
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(engine.StartWorkers().ok());
  RunRecord run = Finished(engine, *id);
  EXPECT_EQ(run.status, RunStatus::kFailed);
  EXPECT_EQ(run.error, Status::Unavailable("the Docker daemon is not answering; start dockerd."));
  EXPECT_EQ(calls.load(), 3);
  auto step = db_->QueryRow("SELECT status, attempts FROM workflow_steps WHERE run_id = $1", {*id});
  ASSERT_TRUE(step.ok() && step->has_value());
  EXPECT_EQ((**step)["status"].AsText(), "failed");
  EXPECT_EQ((**step)["attempts"].AsInt(), 3);
}

TEST_P(WorkflowTest, TerminalFailuresAreNotRetriedAndReplayAsTheSameError) {
  std::atomic<int> bad{0}, made_terminal{0}, next{0};
  auto workflow = [&](RunContext& ctx) -> Status {
    auto parse = ctx.Step("parse", [&]() -> Result<std::string> {
      ++bad;
      return Status::InvalidArgument("Dockerfile line 3: unknown instruction FORM");
    });
    // A transient code made terminal on purpose is not retried either.
    auto push = ctx.Step("push", [&]() -> Result<std::string> {
      ++made_terminal;
      return Terminal(Status::Unavailable("the registry refused the image as too large"));
    });
    if (!parse.ok()) return parse.status();
    return push.status();
  };
  std::string id;
  {
    WorkflowEngine engine(*db_, Fast("e"));
    engine.Register("w", workflow);
    id = *engine.Start("w", "k", "{}");
    ASSERT_TRUE(engine.StartWorkers().ok());
    RunRecord run = Finished(engine, id);
    EXPECT_EQ(run.status, RunStatus::kFailed);
    EXPECT_EQ(run.error, Status::InvalidArgument("Dockerfile line 3: unknown instruction FORM"));
  }
  EXPECT_EQ(bad.load(), 1);
  EXPECT_EQ(made_terminal.load(), 1);

  // Force the failed run to execute again (as if it had crashed before recording its end):
  // both failures replay from the journal; no step body runs again.
  ASSERT_TRUE(db_->Exec("UPDATE workflow_runs SET status = 'running', lease_until = 0 "
                        "WHERE id = $1",
                        {id})
                  .ok());
  WorkflowEngine again(*db_, Fast("again"));
  again.Register("w", workflow);
  ASSERT_TRUE(again.StartWorkers().ok());
  RunRecord run = Finished(again, id);
  EXPECT_EQ(run.status, RunStatus::kFailed);
  EXPECT_EQ(run.error.code(), Code::kInvalidArgument);
  EXPECT_EQ(bad.load(), 1);
  EXPECT_EQ(made_terminal.load(), 1);
  EXPECT_FALSE(IsTransient(Terminal(Status::Unavailable("x"))));
  EXPECT_TRUE(IsTransient(Status::Unavailable("x")));
  EXPECT_FALSE(IsTransient(Status::InvalidArgument("x")));
}

TEST_P(WorkflowTest, TransactionalStepCommitsItsWritesOnlyWithItsJournalEntry) {
  ASSERT_TRUE(
      db_->ExecScript("CREATE TABLE side (run_id TEXT NOT NULL, attempt BIGINT NOT NULL)").ok());
  WorkflowEngine engine(*db_, Fast("e"));
  std::atomic<int> calls{0};
  RetryPolicy policy{.max_attempts = 3, .initial_backoff = 5ms, .max_backoff = 10ms};
  engine.Register("w", [&](RunContext& ctx) -> Status {
    return ctx
        .TransactionalStep(
            "record",
            [&](db::Executor& tx) -> Result<std::string> {
              int attempt = ++calls;
              SLIPWAY_RETURN_IF_ERROR(tx.Exec("INSERT INTO side (run_id, attempt) VALUES ($1, $2)",
                                              {ctx.run_id(), attempt})
                                          .status());
              if (attempt == 1)
                return Status::Unavailable("fails after writing: the write must vanish");
              return std::string("ok");
            },
            policy)
        .status();
  });
  auto id = engine.Start("w", "k", "{}");
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(engine.StartWorkers().ok());
  EXPECT_EQ(Finished(engine, *id).status, RunStatus::kSucceeded);
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM side"), 1);
  EXPECT_EQ(Count("SELECT attempt FROM side"), 2);
}

TEST_P(WorkflowTest, RunsOfUnregisteredWorkflowsAreLeftForOtherEngines) {
  WorkflowEngine engine(*db_, Fast("e"));
  engine.Register("known", [](RunContext&) { return Status::Ok(); });
  auto unknown = engine.Start("unknown", "k1", "{}");
  auto known = engine.Start("known", "k2", "{}");
  ASSERT_TRUE(unknown.ok() && known.ok());
  ASSERT_TRUE(engine.StartWorkers().ok());
  EXPECT_EQ(Finished(engine, *known).status, RunStatus::kSucceeded);
  std::this_thread::sleep_for(100ms);
  auto run = engine.GetRun(*unknown);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->status, RunStatus::kPending);
  EXPECT_EQ(run->claims, 0);
}

INSTANTIATE_TEST_SUITE_P(Workflow, WorkflowTest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) { return testing::TestDriverName(info.param); });

}  // namespace
}  // namespace slipway::workflow
