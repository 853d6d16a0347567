// A control plane killed in the middle of a deployment: `slipway run ctrl` as a child process,
// SIGKILLed after the schedule step while the wait step polls krane, started again on the same
// databases. The deployment must reach READY with exactly `replicas` containers (the ones
// created before the kill: none duplicated, none leaked), and the journaled wait deadline must
// be the one fixed before the kill.
#include <gtest/gtest.h>
#include <signal.h>

#include <set>
#include <sstream>

#include "db/migrations.h"
#include "deploy_fixture.h"
#include "support/postgres.h"
#include "storage/s3_client.h"

namespace slipway::ctrl::deploy_test {
namespace {

class DeployKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ping = Docker("GET", "/_ping");
    ASSERT_TRUE(ping.ok()) << "dockerd does not answer: " << ping.status().ToString();
    BuildAppImages(dir_.path() / "images");
    krane_.Start();
    s3_ = StartS3(dir_.path() / "s3");
    ASSERT_NE(s3_, nullptr);
    port_ = testing::FreePort();
  }

  void TearDown() override {
    ctrl_.reset();
    if (!deployment_.empty()) RemoveContainersOf(deployment_);
    krane_.Stop();
    if (s3_) s3_->Shutdown();
    RemoveAppImages();
    if (HasFailure()) {
      for (int i = 1; i <= starts_; ++i) {
        std::cerr << "ctrl log " << i << ":\n" << testing::ReadFile(LogFile(i)) << "\n";
      }
    }
  }

  std::string LogFile(int n) const {
    return (dir_.path() / ("ctrl-" + std::to_string(n) + ".log")).string();
  }
  // SQLite files unless a test chose other databases (UseDatabases).
  std::string MainDb() const { return main_db_.empty() ? (dir_.path() / "main.db").string() : main_db_; }
  std::string PartitionDb() const {
    return partition_db_.empty() ? (dir_.path() / "partition.db").string() : partition_db_;
  }
  void UseDatabases(testing::TestDriver driver) {
    main_db_ = testing::FreshDatabaseUrl(driver, dir_.path());
    partition_db_ = testing::FreshDatabaseUrl(driver, dir_.path());
  }

  void StartCtrl(bool issue_token, const std::string& wait_deadline = "2m",
                 const std::vector<std::string>& extra = {}) {
    ++starts_;
    std::vector<std::string> argv = {testing::SlipwayBinary(),
                                     "run",
                                     "ctrl",
                                     "--listen",
                                     "127.0.0.1:" + std::to_string(port_),
                                     "--database",
                                     MainDb(),
                                     "--partition-database",
                                     PartitionDb(),
                                     "--s3-endpoint",
                                     s3_->endpoint(),
                                     "--krane-url",
                                     krane_.url(),
                                     "--wait-interval",
                                     "250ms",
                                     "--wait-deadline",
                                     wait_deadline,
                                     "--workflow-lease",
                                     "2s"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (issue_token) {
      argv.push_back("--issue-token");
      argv.push_back("deploy-kill");
    }
    ctrl_ = std::make_unique<testing::Process>(
        argv,
        std::map<std::string, std::string>{{"S3_ACCESS_KEY_ID", kS3Access},
                                           {"S3_SECRET_ACCESS_KEY", kS3Secret},
                                           {"KRANE_TOKEN", kKraneToken}},
        LogFile(starts_));
    ASSERT_TRUE(testing::WaitForPort(port_, 30s)) << testing::ReadFile(LogFile(starts_));
  }

  // The token `--issue-token` printed: the output line that is one.
  std::string IssuedToken() {
    for (int i = 0; i < 50; ++i) {
      std::istringstream lines(testing::ReadFile(LogFile(starts_)));
      std::string line;
      while (std::getline(lines, line)) {
        if (line.rfind("slw_", 0) == 0) return line;
      }
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "no token in the output of ctrl:\n" << testing::ReadFile(LogFile(starts_));
    return "";
  }

  std::string Endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // The wait deadline the journal holds for the deployment's run.
  std::string JournaledWaitDeadline() {
    auto db = db::Open(MainDb());
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    if (!db.ok()) return "";
    auto row = (*db)->QueryRow(
        "SELECT s.output FROM workflow_steps s JOIN workflow_runs r ON r.id = s.run_id "
        "WHERE r.input = $1 AND s.name = '@deadline/wait'",
        {deployment_});
    EXPECT_TRUE(row.ok()) << row.status().ToString();
    if (!row.ok() || !*row) return "";
    return (**row)["output"].AsText();
  }

  testing::TempDir dir_;
  InProcessKrane krane_;
  std::unique_ptr<storage::S3Server> s3_;
  int port_ = 0;
  int starts_ = 0;
  std::unique_ptr<testing::Process> ctrl_;
  std::string deployment_;
  std::string main_db_, partition_db_;
};

TEST_F(DeployKillTest, CtrlKilledWhileWaitingResumesToReadyWithExactlyTheReplicas) {
  StartCtrl(/*issue_token=*/true);
  const std::string token = IssuedToken();
  ASSERT_FALSE(token.empty());
  CtrlClient client(Endpoint(), token);

  // The slow app listens only 5 s after it starts: long enough to kill ctrl while it waits.
  auto id = client.DeployImage("phoenix", Image("slow"), 2, "main");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  deployment_ = *id;
  pb::Deployment waiting = client.WaitFor(deployment_, 60s, [](const pb::Deployment& d) {
    const auto* schedule = FindStep(d, "schedule");
    const auto* wait = FindStep(d, "wait");
    return schedule && schedule->status() == pb::STEP_STATUS_SUCCEEDED && wait &&
           wait->status() == pb::STEP_STATUS_RUNNING;
  });
  ASSERT_EQ(FindStep(waiting, "wait")->status(), pb::STEP_STATUS_RUNNING) << waiting.DebugString();
  const std::string deadline_before = JournaledWaitDeadline();
  ASSERT_FALSE(deadline_before.empty());

  ctrl_->Signal(SIGKILL);
  EXPECT_EQ(ctrl_->Wait(10s), 128 + SIGKILL);
  auto before = ContainersOf(deployment_);
  ASSERT_EQ(before.size(), 2u) << "krane created both replicas before the kill";
  std::set<std::string> ids_before;
  for (const auto& c : before) ids_before.insert(c["Id"].get<std::string>());

  StartCtrl(/*issue_token=*/false);
  pb::Deployment d = client.WaitForFinal(deployment_, 90s);
  ASSERT_EQ(d.status(), pb::DEPLOYMENT_STATUS_READY)
      << "failed step \"" << d.failed_step() << "\": " << d.error();

  auto after = ContainersOf(deployment_);
  ASSERT_EQ(after.size(), 2u);
  std::set<std::string> ids_after;
  for (const auto& c : after) {
    ids_after.insert(c["Id"].get<std::string>());
    EXPECT_EQ(c["State"], "running");
  }
  EXPECT_EQ(ids_after, ids_before) << "the restarted ctrl created containers again";
  EXPECT_EQ(JournaledWaitDeadline(), deadline_before) << "the restart moved the deadline";

  auto partition = db::OpenPartition(PartitionDb());
  ASSERT_TRUE(partition.ok()) << partition.status().ToString();
  auto instances = PartitionInstances(**partition, deployment_);
  ASSERT_EQ(instances.size(), 2u);
  for (const auto& in : instances) EXPECT_EQ(in.status, "RUNNING") << in.instance_id;
  EXPECT_EQ(PartitionRoutes(**partition)["phoenix-production.localhost"], deployment_);
  EXPECT_EQ(d.urls(0), "http://phoenix-production.localhost:8080");
  EXPECT_TRUE(d.has_openapi_spec());

  ctrl_->Signal(SIGTERM);
  EXPECT_EQ(ctrl_->Wait(20s), 0);
}

// The cleanup after a failure is a journaled step too: a ctrl killed while it cannot reach
// krane to remove the instances finishes the removal after its restart, and only then reports
// FAILED.
TEST_F(DeployKillTest, CtrlKilledDuringCleanupFinishesItAfterRestart) {
  StartCtrl(/*issue_token=*/true, /*wait_deadline=*/"3s");
  const std::string token = IssuedToken();
  ASSERT_FALSE(token.empty());
  CtrlClient client(Endpoint(), token);

  auto id = client.DeployImage("lazarus", Image("sleeper"), 1);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  deployment_ = *id;
  pb::Deployment scheduled = client.WaitFor(deployment_, 60s, [](const pb::Deployment& d) {
    const auto* schedule = FindStep(d, "schedule");
    return schedule && schedule->status() == pb::STEP_STATUS_SUCCEEDED;
  });
  ASSERT_EQ(FindStep(scheduled, "schedule")->status(), pb::STEP_STATUS_SUCCEEDED);

  // krane goes away: the wait runs into its deadline, the cleanup cannot reach krane.
  krane_.Stop();
  pb::Deployment failing = client.WaitFor(deployment_, 30s, [](const pb::Deployment& d) {
    const auto* wait = FindStep(d, "wait");
    return wait && wait->status() == pb::STEP_STATUS_FAILED;
  });
  ASSERT_EQ(FindStep(failing, "wait")->status(), pb::STEP_STATUS_FAILED) << failing.DebugString();
  ctrl_->Signal(SIGKILL);
  EXPECT_EQ(ctrl_->Wait(10s), 128 + SIGKILL);
  auto after_kill = client.Get(deployment_);
  // Not reported FAILED yet: its instance is still there to be removed.
  EXPECT_FALSE(after_kill.ok() && after_kill->status() == pb::DEPLOYMENT_STATUS_FAILED);
  EXPECT_EQ(ContainersOf(deployment_).size(), 1u);

  krane_.Start();
  StartCtrl(/*issue_token=*/false, "3s");
  pb::Deployment d = client.WaitForFinal(deployment_, 90s);
  ASSERT_EQ(d.status(), pb::DEPLOYMENT_STATUS_FAILED) << d.DebugString();
  EXPECT_EQ(d.failed_step(), "wait");
  EXPECT_NE(d.error().find("never became ready"), std::string::npos) << d.error();
  EXPECT_EQ(d.error().find("could not be removed"), std::string::npos) << d.error();
  EXPECT_TRUE(ContainersOf(deployment_).empty()) << "the instance was left running";
  auto partition = db::OpenPartition(PartitionDb());
  ASSERT_TRUE(partition.ok()) << partition.status().ToString();
  EXPECT_TRUE(PartitionInstances(**partition, deployment_).empty());

  ctrl_->Signal(SIGTERM);
  EXPECT_EQ(ctrl_->Wait(20s), 0);
}

// The retention job of a ctrl SIGKILLed again and again at moments spread over its runs
// (every 100 ms, no grace, the newest two sources kept): after each kill the sources the policy
// keeps are all still there; once ctrl runs undisturbed, exactly the older ones are gone.
class RetentionKillTest : public DeployKillTest,
                          public ::testing::WithParamInterface<testing::TestDriver> {};

TEST_P(RetentionKillTest, KilledAtAnyMomentNeverDeletesWhatThePolicyKeeps) {
  UseDatabases(GetParam());
  const std::vector<std::string> retention = {"--retention-interval", "100ms", "--retention-grace",
                                              "0s", "--retention-keep", "2"};
  StartCtrl(/*issue_token=*/true, "2m", retention);
  const std::string token = IssuedToken();
  ASSERT_FALSE(token.empty());
  CtrlClient client(Endpoint(), token);
  std::vector<std::string> ids, keys;
  for (int i = 1; i <= 4; ++i) {
    keys.push_back(UploadSiteContext(client, "sweeper", "sweep " + std::to_string(i), dir_.path()));
    ids.push_back(DeployContext(client, "sweeper", keys.back()));
    ASSERT_FALSE(ids.back().empty());
    ASSERT_EQ(client.WaitForFinal(ids.back(), 180s).status(), pb::DEPLOYMENT_STATUS_READY);
  }
  storage::S3ClientOptions so;
  so.endpoint = s3_->endpoint();
  so.credentials.access_key = kS3Access;
  so.credentials.secret_key = kS3Secret;
  storage::S3Client s3(so);
  auto kept = [&](const std::string& key) { return s3.HeadObject("slipway", key).ok(); };

  for (int round = 0; round < 8; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + (round * 73) % 260));
    ctrl_->Signal(SIGKILL);
    ctrl_->Wait();
    EXPECT_TRUE(kept(keys[2]) && kept(keys[3])) << "round " << round << ": a kept source is gone";
    StartCtrl(/*issue_token=*/false, "2m", retention);
  }
  bool swept = false;
  for (auto until = std::chrono::steady_clock::now() + 60s;
       !swept && std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(100ms)) {
    swept = !kept(keys[0]) && !kept(keys[1]);
  }
  EXPECT_TRUE(swept) << "the two oldest sources were never deleted";
  EXPECT_TRUE(kept(keys[2]) && kept(keys[3]));
  for (int i = 0; i < 3; ++i) {
    pb::Deployment d = client.WaitFor(ids[i], 30s, [](const pb::Deployment& d) {
      return d.stopped_at_ms() > 0;
    });
    EXPECT_GT(d.stopped_at_ms(), 0) << ids[i];
    EXPECT_TRUE(ContainersOf(ids[i]).empty()) << ids[i];
  }
  EXPECT_EQ(ContainersOf(ids[3]).size(), 1u) << "the live deployment runs on";
  for (const auto& id : ids) {
    RemoveContainersOf(id);
    (void)Docker("DELETE", "/images/" + net::UriEncode("sweeper:" + id) + "?force=1&noprune=1");
  }
}

INSTANTIATE_TEST_SUITE_P(Drivers, RetentionKillTest,
                         ::testing::Values(testing::TestDriver::kSqlite, testing::TestDriver::kPostgres),
                         [](const auto& info) { return testing::TestDriverName(info.param); });

}  // namespace
}  // namespace slipway::ctrl::deploy_test
