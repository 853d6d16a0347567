// Rollback, promote, redeploy and delete against real parts, on SQLite and on PostgreSQL: ctrl
// in-process, krane's docker backend on the real dockerd over HTTP, a real gateway on the
// partition database, the embedded S3 server, FROM scratch busybox apps.
//
// Shown here: a rollback moves the environment's host back while a stream of requests runs
// through the gateway, and not one of them fails; a rollback to a deployment whose instances
// are gone starts them again before the host moves; promote moves production to a preview
// deployment; redeploy builds the retained context again, and says so clearly once the context
// is gone; delete refuses the live deployment without --force and removes instances, routes,
// hosts and the context nobody else uses.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "base/crypto.h"
#include "ctrl/ctrl_server.h"
#include "db/migrations.h"
#include "deploy_fixture.h"
#include "gateway/gateway_server.h"
#include "slipway/ctrl/v1/build.pb.h"
#include "support/postgres.h"

namespace slipway::ctrl::deploy_test {
namespace {

using testing::TestDriver;

class LifecycleTest : public ::testing::TestWithParam<TestDriver> {
 protected:
  static void SetUpTestSuite() {
    auto ping = Docker("GET", "/_ping");
    ASSERT_TRUE(ping.ok()) << "dockerd does not answer (start it with scripts/services.sh)";
    suite_dir_ = new testing::TempDir();
    BuildAppImages(suite_dir_->path() / "images");
    krane_ = new InProcessKrane();
    krane_->Start();
  }
  static void TearDownTestSuite() {
    if (krane_ != nullptr) krane_->Stop();
    delete krane_;
    krane_ = nullptr;
    RemoveAppImages();
    delete suite_dir_;
  }

  void SetUp() override {
    s3_ = StartS3(dir_.path() / "s3");
    ASSERT_NE(s3_, nullptr);
    const std::string partition_url = testing::FreshDatabaseUrl(GetParam(), dir_.path());
    CtrlOptions o;
    o.listen = "127.0.0.1:0";
    o.database_url = testing::FreshDatabaseUrl(GetParam(), dir_.path());
    o.partition_database_url = partition_url;
    o.s3.endpoint = s3_->endpoint();
    o.s3.credentials.access_key = kS3Access;
    o.s3.credentials.secret_key = kS3Secret;
    o.krane_url = krane_->url();
    o.krane_token = kKraneToken;
    o.wait_interval = 250ms;
    o.wait_deadline = 60s;
    o.retention = Retention();
    auto server = CtrlServer::Start(o);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    ctrl_ = std::move(*server);
    auto token = ctrl_->IssueToken("lifecycle-test");
    ASSERT_TRUE(token.ok());
    client_ = std::make_unique<CtrlClient>(ctrl_->endpoint(), *token);
    auto partition = db::OpenPartition(partition_url);
    ASSERT_TRUE(partition.ok()) << partition.status().ToString();
    partition_ = std::move(*partition);
    gateway::GatewayOptions g;
    g.listen = "127.0.0.1:0";
    g.partition = partition_.get();
    g.refresh_interval = 100ms;
    auto gw = gateway::GatewayServer::Start(g);
    ASSERT_TRUE(gw.ok()) << gw.status().ToString();
    gateway_ = std::move(*gw);
  }

  void TearDown() override {
    if (gateway_) gateway_->Shutdown(1s);
    if (ctrl_) ctrl_->Shutdown();
    for (const auto& id : deployments_) RemoveContainersOf(id);
    for (const auto& image : built_images_) {
      (void)Docker("DELETE", "/images/" + net::UriEncode(image) + "?force=1&noprune=1");
    }
    if (s3_) s3_->Shutdown();
  }

  // The lifecycle tests run without the periodic retention job; its own test turns it on.
  virtual RetentionPolicy Retention() const {
    RetentionPolicy off;
    off.interval = 0ms;
    return off;
  }

  // A READY deployment built from an uploaded context saying `text`.
  std::string DeploySourceReady(const std::string& project, const std::string& text,
                                std::string* key_out = nullptr) {
    const std::string key = UploadContext(project, text);
    if (key_out != nullptr) *key_out = key;
    const std::string id = DeployContext(*client_, project, key);
    if (id.empty()) return "";
    deployments_.push_back(id);
    built_images_.push_back(project + ":" + id);
    pb::Deployment d = client_->WaitForFinal(id, 180s);
    EXPECT_EQ(d.status(), pb::DEPLOYMENT_STATUS_READY) << d.failed_step() << ": " << d.error();
    return id;
  }

  bool ContextKept(const std::string& key) {
    storage::S3ClientOptions so;
    so.endpoint = s3_->endpoint();
    so.credentials.access_key = kS3Access;
    so.credentials.secret_key = kS3Secret;
    return storage::S3Client(so).HeadObject("slipway", key).ok();
  }

  // A READY deployment of the image, or a failed assertion.
  std::string DeployReady(const std::string& project, const std::string& image,
                          const std::string& environment = "", const std::string& branch = "") {
    auto id = client_->DeployImage(project, image, 1, branch, environment);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    if (!id.ok()) return "";
    deployments_.push_back(*id);
    pb::Deployment d = client_->WaitForFinal(*id);
    EXPECT_EQ(d.status(), pb::DEPLOYMENT_STATUS_READY) << d.failed_step() << ": " << d.error();
    return *id;
  }

  template <typename Resp, typename Req>
  Result<Resp> Call(const std::string& method, const Req& req) {
    return client_->connect().Call<Resp>(net::ConnectProcedure(kDeploymentService, method), req);
  }

  Result<pb::RollbackResponse> Rollback(const std::string& project, const std::string& to = "") {
    pb::RollbackRequest req;
    req.set_project(project);
    req.set_to_deployment_id(to);
    return Call<pb::RollbackResponse>("Rollback", req);
  }
  Result<pb::DeleteDeploymentResponse> Delete(const std::string& id, bool force = false) {
    pb::DeleteDeploymentRequest req;
    req.set_deployment_id(id);
    req.set_force(force);
    return Call<pb::DeleteDeploymentResponse>("DeleteDeployment", req);
  }

  std::string Body(const std::string& host) {
    net::HttpClient http;
    net::ClientRequest req;
    req.url = gateway_->endpoint() + "/";
    req.headers.Set("Host", host);
    req.timeout = 5s;
    auto resp = http.Do(req);
    if (!resp.ok()) return "(" + resp.status().ToString() + ")";
    return std::to_string(resp->status) + " " + resp->body;
  }

  std::string UploadContext(const std::string& project, const std::string& text) {
    return UploadSiteContext(*client_, project, text, dir_.path());
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::S3Server> s3_;
  std::unique_ptr<CtrlServer> ctrl_;
  std::unique_ptr<CtrlClient> client_;
  std::unique_ptr<db::Database> partition_;
  std::unique_ptr<gateway::GatewayServer> gateway_;
  std::vector<std::string> deployments_;
  std::vector<std::string> built_images_;

  static testing::TempDir* suite_dir_;
  static InProcessKrane* krane_;
};
testing::TempDir* LifecycleTest::suite_dir_ = nullptr;
InProcessKrane* LifecycleTest::krane_ = nullptr;

TEST_P(LifecycleTest, RollbackMovesTheHostBackUnderAStreamOfRequestsWithNoneFailing) {
  const std::string one = DeployReady("roll", Image("hello"));
  const std::string two = DeployReady("roll", Image("plain"));
  ASSERT_FALSE(one.empty() || two.empty());
  const std::string host = "roll-production.localhost";
  ASSERT_EQ(Body(host), "200 no spec here\n");
  auto live = client_->Get(two);
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(std::vector<std::string>(live->live_environments().begin(), live->live_environments().end()),
            std::vector<std::string>{"production"});

  std::atomic<bool> stop{false};
  std::atomic<int> requests{0}, failures{0}, from_one{0};
  std::string first_failure;
  std::thread load([&] {
    while (!stop) {
      std::string b = Body(host);
      ++requests;
      if (b == "200 hello from a deployment\n") {
        ++from_one;
      } else if (b != "200 no spec here\n") {
        if (failures++ == 0) first_failure = b;
      }
    }
  });
  std::this_thread::sleep_for(300ms);
  auto rolled = Rollback("roll");
  std::this_thread::sleep_for(300ms);
  stop = true;
  load.join();
  ASSERT_TRUE(rolled.ok()) << rolled.status().ToString();
  EXPECT_EQ(rolled->deployment().id(), one) << "the deployment before the live one";
  EXPECT_EQ(failures.load(), 0) << "of " << requests.load() << " requests; first: " << first_failure;
  EXPECT_GT(from_one.load(), 0) << "the host never served the rolled-back deployment";
  EXPECT_EQ(Body(host), "200 hello from a deployment\n") << "the rollback returned before the "
                                                            "gateway served it";
  EXPECT_EQ(PartitionRoutes(*partition_)[host], one);
  auto now_two = client_->Get(two);
  ASSERT_TRUE(now_two.ok());
  EXPECT_EQ(now_two->live_environments_size(), 0);
  EXPECT_EQ(Body("roll-" + ShortId(two) + ".localhost"), "200 no spec here\n")
      << "the newer deployment keeps running on its own host";

  // Nothing older to go back to now (the only older one is live), and bad targets are refused.
  auto again = Rollback("roll");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kFailedPrecondition) << again.status().ToString();
  auto forward = Rollback("roll", two);
  ASSERT_TRUE(forward.ok()) << "a rollback may name any READY deployment of the environment: "
                            << forward.status().ToString();
  EXPECT_EQ(Body(host), "200 no spec here\n");
  auto unknown = Rollback("roll", "dep_0000000000000000");
  EXPECT_EQ(unknown.status().code(), Code::kNotFound);
}

TEST_P(LifecycleTest, RollbackToADeploymentWhoseInstancesAreGoneStartsThemBeforeTheHostMoves) {
  const std::string one = DeployReady("revive", Image("hello"));
  const std::string two = DeployReady("revive", Image("plain"));
  ASSERT_FALSE(one.empty() || two.empty());
  RemoveContainersOf(one);  // as the retention policy stops superseded deployments
  ASSERT_TRUE(ContainersOf(one).empty());

  auto rolled = Rollback("revive", one);
  ASSERT_TRUE(rolled.ok()) << rolled.status().ToString();
  auto containers = ContainersOf(one);
  ASSERT_EQ(containers.size(), 1u) << "its instance was started again";
  EXPECT_EQ(containers[0].value("State", ""), "running");
  auto instances = PartitionInstances(*partition_, one);
  ASSERT_EQ(instances.size(), 1u);
  EXPECT_EQ(instances[0].status, "RUNNING");
  EXPECT_EQ(Body("revive-production.localhost"), "200 hello from a deployment\n");
}

TEST_P(LifecycleTest, PromoteMovesProductionToAPreviewDeploymentWithoutABuild) {
  const std::string prod = DeployReady("promo", Image("hello"));
  const std::string preview = DeployReady("promo", Image("plain"), "preview", "feature-x");
  ASSERT_FALSE(prod.empty() || preview.empty());
  EXPECT_EQ(Body("promo-production.localhost"), "200 hello from a deployment\n");

  pb::PromoteRequest req;
  req.set_deployment_id(preview);
  auto promoted = Call<pb::PromoteResponse>("Promote", req);
  ASSERT_TRUE(promoted.ok()) << promoted.status().ToString();
  std::vector<std::string> live(promoted->deployment().live_environments().begin(),
                                promoted->deployment().live_environments().end());
  EXPECT_EQ(live, (std::vector<std::string>{"preview", "production"}));
  EXPECT_EQ(Body("promo-production.localhost"), "200 no spec here\n");
  EXPECT_EQ(Body("promo-preview.localhost"), "200 no spec here\n");
  EXPECT_EQ(promoted->deployment().image(), Image("plain")) << "no rebuild: the same image";

  auto twice = Call<pb::PromoteResponse>("Promote", req);
  EXPECT_EQ(twice.status().code(), Code::kFailedPrecondition);
  req.set_environment("Not_Valid");
  EXPECT_EQ(Call<pb::PromoteResponse>("Promote", req).status().code(), Code::kInvalidArgument);
}

TEST_P(LifecycleTest, RedeployBuildsTheRetainedContextAgainAndSaysSoWhenItIsGone) {
  std::string key;
  const std::string first = DeploySourceReady("rebuild", "built once", &key);
  ASSERT_FALSE(first.empty());

  pb::RedeployRequest req;
  req.set_deployment_id(first);
  req.set_no_cache(true);
  auto again = Call<pb::CreateDeploymentResponse>("Redeploy", req);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  const std::string second = again->deployment_id();
  deployments_.push_back(second);
  built_images_.push_back("rebuild:" + second);
  pb::Deployment d = client_->WaitForFinal(second, 180s);
  ASSERT_EQ(d.status(), pb::DEPLOYMENT_STATUS_READY) << d.error();
  EXPECT_NE(d.build_id(), "");
  EXPECT_EQ(d.image(), "rebuild:" + second) << "a new image, built again";
  EXPECT_EQ(Body("rebuild-production.localhost"), "200 built once\n");

  // Deleting the first keeps the context (the second uses it); deleting the second, live, needs
  // --force and then takes the context too.
  auto del_first = Delete(first);
  ASSERT_TRUE(del_first.ok()) << del_first.status().ToString();
  EXPECT_NE(del_first->summary().find("context kept"), std::string::npos) << del_first->summary();
  storage::S3ClientOptions so;
  so.endpoint = s3_->endpoint();
  so.credentials.access_key = kS3Access;
  so.credentials.secret_key = kS3Secret;
  storage::S3Client s3(so);
  auto head = s3.HeadObject("slipway", key);
  EXPECT_TRUE(head.ok()) << head.status().ToString();
  auto refused = Delete(second);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--force"), std::string::npos) << refused.status().message();
  auto del_second = Delete(second, true);
  ASSERT_TRUE(del_second.ok()) << del_second.status().ToString();
  EXPECT_NE(del_second->summary().find("context deleted"), std::string::npos) << del_second->summary();
  EXPECT_EQ(s3.HeadObject("slipway", key).status().code(), Code::kNotFound);

  // With the context gone, a redeploy says what happened and what to do.
  req.set_deployment_id(first);
  auto gone = Call<pb::CreateDeploymentResponse>("Redeploy", req);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(gone.status().message().find("no longer kept"), std::string::npos) << gone.status().message();
}

TEST_P(LifecycleTest, DeleteRemovesInstancesRoutesAndHostsAndRefusesTheLiveOneWithoutForce) {
  const std::string one = DeployReady("gone", Image("hello"));
  const std::string two = DeployReady("gone", Image("plain"));
  ASSERT_FALSE(one.empty() || two.empty());

  auto refused = Delete(two);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(ContainersOf(two).size(), 1u) << "a refused delete changes nothing";

  auto deleted = Delete(one);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(deleted->deployment().status(), pb::DEPLOYMENT_STATUS_DELETED);
  EXPECT_EQ(deleted->deployment().urls_size(), 0);
  EXPECT_TRUE(ContainersOf(one).empty());
  EXPECT_TRUE(PartitionInstances(*partition_, one).empty());
  for (const auto& [h, dep] : PartitionRoutes(*partition_)) EXPECT_NE(dep, one) << h;
  EXPECT_EQ(Body("gone-" + ShortId(one) + ".localhost").substr(0, 3), "404");
  EXPECT_EQ(Body("gone-production.localhost"), "200 no spec here\n") << "the live one is untouched";
  auto twice = Delete(one);
  ASSERT_TRUE(twice.ok()) << "deleting what is deleted is not an error";
  EXPECT_EQ(twice->summary(), "already deleted");
  auto rollback_to_deleted = Rollback("gone", one);
  EXPECT_EQ(rollback_to_deleted.status().code(), Code::kFailedPrecondition);

  auto forced = Delete(two, true);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_EQ(Body("gone-production.localhost").substr(0, 3), "404");
}

TEST_P(LifecycleTest, AGatewayInThisProcessServesARouteChangeWithoutWaitingForItsReload) {
  // A second gateway on the same partition database that would reload only once an hour.
  gateway::GatewayOptions g;
  g.listen = "127.0.0.1:0";
  g.partition = partition_.get();
  g.refresh_interval = std::chrono::hours(1);
  auto slow = gateway::GatewayServer::Start(g);
  ASSERT_TRUE(slow.ok()) << slow.status().ToString();
  auto fetch = [&](const std::string& host) {
    net::HttpClient http;
    net::ClientRequest req;
    req.url = (*slow)->endpoint() + "/";
    req.headers.Set("Host", host);
    auto resp = http.Do(req);
    return resp.ok() ? std::to_string(resp->status) + " " + resp->body : resp.status().ToString();
  };
  const std::string one = DeployReady("pushed", Image("hello"));
  ASSERT_FALSE(one.empty());
  EXPECT_EQ(fetch("pushed-production.localhost"), "200 hello from a deployment\n")
      << "READY means every gateway of this process serves the route already";
  const std::string two = DeployReady("pushed", Image("plain"));
  EXPECT_EQ(fetch("pushed-production.localhost"), "200 no spec here\n");
  (*slow)->Shutdown(1s);
}

// The retention job on: every 300 ms, no grace, the newest two sources per environment kept.
class RetentionTest : public LifecycleTest {
 protected:
  RetentionPolicy Retention() const override {
    RetentionPolicy p;
    p.interval = 300ms;
    p.grace = 0ms;
    p.keep = 2;
    return p;
  }
};

TEST_P(RetentionTest, StopsSupersededDeploymentsDeletesOldSourcesAndKeepsWhatThePolicyKeeps) {
  std::vector<std::string> ids, keys;
  for (int i = 1; i <= 4; ++i) {
    std::string key;
    ids.push_back(DeploySourceReady("keeper", "version " + std::to_string(i), &key));
    keys.push_back(key);
    ASSERT_FALSE(ids.back().empty());
  }
  // Another workspace's project, with only its live deployment: nothing of it may change.
  auto other_token = ctrl_->IssueToken("another-workspace");
  ASSERT_TRUE(other_token.ok());
  CtrlClient other(ctrl_->endpoint(), *other_token);
  auto theirs = other.DeployImage("theirs", Image("hello"), 1);
  ASSERT_TRUE(theirs.ok()) << theirs.status().ToString();
  deployments_.push_back(*theirs);
  ASSERT_EQ(other.WaitForFinal(*theirs).status(), pb::DEPLOYMENT_STATUS_READY);

  // The three superseded ones are stopped (grace 0); the live one runs on.
  for (int i = 0; i < 3; ++i) {
    pb::Deployment d = client_->WaitFor(ids[i], 30s, [](const pb::Deployment& d) {
      return d.stopped_at_ms() > 0;
    });
    EXPECT_GT(d.stopped_at_ms(), 0) << ids[i] << " was not stopped";
    EXPECT_TRUE(ContainersOf(ids[i]).empty()) << ids[i];
  }
  EXPECT_EQ(ContainersOf(ids[3]).size(), 1u);
  EXPECT_EQ(Body("keeper-production.localhost"), "200 version 4\n");
  // A stopped deployment's own host says so, and how to bring it back.
  std::string page = Body("keeper-" + ShortId(ids[0]) + ".localhost");
  EXPECT_EQ(page.substr(0, 3), "503") << page;
  EXPECT_NE(page.find("is stopped"), std::string::npos) << page;
  EXPECT_NE(page.find("slipway rollback --to " + ids[0]), std::string::npos) << page;

  // Sources: the newest two kept (live and the rollback target), the older two deleted.
  bool deleted = false;
  for (auto until = std::chrono::steady_clock::now() + 30s;
       !deleted && std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(100ms)) {
    deleted = !ContextKept(keys[0]) && !ContextKept(keys[1]);
  }
  EXPECT_TRUE(deleted) << "the two oldest sources were not deleted";
  EXPECT_TRUE(ContextKept(keys[2]));
  EXPECT_TRUE(ContextKept(keys[3]));
  pb::RedeployRequest redeploy;
  redeploy.set_deployment_id(ids[0]);
  auto gone = Call<pb::CreateDeploymentResponse>("Redeploy", redeploy);
  EXPECT_EQ(gone.status().code(), Code::kFailedPrecondition) << gone.status().ToString();

  // The other workspace's live deployment is untouched.
  EXPECT_EQ(ContainersOf(*theirs).size(), 1u);
  auto t = other.Get(*theirs);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->stopped_at_ms(), 0);

  // A rollback to a stopped deployment starts it again; its page is the app's once more.
  auto rolled = Rollback("keeper", ids[2]);
  ASSERT_TRUE(rolled.ok()) << rolled.status().ToString();
  EXPECT_EQ(rolled->deployment().stopped_at_ms(), 0);
  EXPECT_EQ(Body("keeper-production.localhost"), "200 version 3\n");
  EXPECT_EQ(Body("keeper-" + ShortId(ids[2]) + ".localhost"), "200 version 3\n");
}

INSTANTIATE_TEST_SUITE_P(Drivers, RetentionTest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) { return testing::TestDriverName(info.param); });

INSTANTIATE_TEST_SUITE_P(Drivers, LifecycleTest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) { return testing::TestDriverName(info.param); });

}  // namespace
}  // namespace slipway::ctrl::deploy_test
