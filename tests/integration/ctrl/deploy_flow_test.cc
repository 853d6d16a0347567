// The deploy workflow past the build, end to end on real parts: ctrl in-process (SQLite, and
// PostgreSQL for the happy path), krane's docker backend on the real dockerd over HTTP, the
// embedded S3 server. Deployments use the `image` source with FROM scratch busybox images.
//
// Shown here: READY with exactly `replicas` RUNNING instances in the partition database, routes
// for its hosts, hostnames and URLs, the scraped OpenAPI spec; a second deploy moving the
// environment and branch hosts while the first keeps its own; an app that exits failing fast
// at "wait" with its exit code and log; one that never listens failing at the deadline naming
// its instance; nothing left running after a failure.
#include <gtest/gtest.h>

#include <iostream>
#include <set>

#include "ctrl/ctrl_server.h"
#include "db/migrations.h"
#include "deploy_fixture.h"
#include "slipway/ctrl/v1/build.pb.h"
#include "support/postgres.h"

namespace slipway::ctrl::deploy_test {
namespace {

using testing::TestDriver;

constexpr int kGatewayPort = 18080;

class DeployFlowTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto ping = Docker("GET", "/_ping");
    ASSERT_TRUE(ping.ok()) << "dockerd does not answer on /var/run/docker.sock ("
                           << ping.status().ToString() << "); start it with scripts/services.sh";
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

  // Starts ctrl on fresh databases of that driver.
  void StartCtrl(TestDriver driver, std::chrono::milliseconds wait_deadline = 60s) {
    s3_ = StartS3(dir_.path() / "s3");
    ASSERT_NE(s3_, nullptr);
    main_url_ = testing::FreshDatabaseUrl(driver, dir_.path());
    partition_url_ = testing::FreshDatabaseUrl(driver, dir_.path());
    CtrlOptions o;
    o.listen = "127.0.0.1:0";
    o.database_url = main_url_;
    o.partition_database_url = partition_url_;
    o.s3.endpoint = s3_->endpoint();
    o.s3.credentials.access_key = kS3Access;
    o.s3.credentials.secret_key = kS3Secret;
    o.krane_url = krane_->url();
    o.krane_token = kKraneToken;
    o.wait_interval = 250ms;
    o.wait_deadline = wait_deadline;
    o.gateway_public_port = kGatewayPort;
    auto server = CtrlServer::Start(o);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    ctrl_ = std::move(*server);
    auto token = ctrl_->IssueToken("deploy-test");
    ASSERT_TRUE(token.ok()) << token.status().ToString();
    client_ = std::make_unique<CtrlClient>(ctrl_->endpoint(), *token);
    auto partition = db::OpenPartition(partition_url_);
    ASSERT_TRUE(partition.ok()) << partition.status().ToString();
    partition_ = std::move(*partition);
  }

  void TearDown() override {
    if (ctrl_) ctrl_->Shutdown();
    for (const auto& id : deployments_) RemoveContainersOf(id);
    if (s3_) s3_->Shutdown();
  }

  std::string Deploy(const std::string& project, const std::string& image, int replicas,
                     const std::string& branch = "") {
    auto id = client_->DeployImage(project, image, replicas, branch);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    if (!id.ok()) return "";
    deployments_.push_back(*id);
    return *id;
  }

  static std::string Host(const std::string& label) { return label + ".localhost"; }
  static std::string OwnHost(const std::string& project, const std::string& id) {
    return Host(project + "-" + ShortId(id));
  }

  // READY, with every step succeeded; the failure reason in the message otherwise.
  void ExpectReady(const pb::Deployment& d) {
    ASSERT_EQ(d.status(), pb::DEPLOYMENT_STATUS_READY)
        << "status " << pb::DeploymentStatus_Name(d.status()) << ", failed step \""
        << d.failed_step() << "\": " << d.error();
    for (const auto& s : d.steps()) {
      EXPECT_EQ(s.status(), pb::STEP_STATUS_SUCCEEDED) << s.name() << ": " << s.error();
    }
  }

  void ExpectNothingLeft(const std::string& id) {
    EXPECT_TRUE(ContainersOf(id).empty()) << "containers of " << id << " are left behind";
    EXPECT_TRUE(PartitionInstances(*partition_, id).empty());
    for (const auto& [host, dep] : PartitionRoutes(*partition_)) {
      EXPECT_NE(dep, id) << host << " still routes to the failed deployment";
    }
  }

  void HappyPath(TestDriver driver) {
    StartCtrl(driver);
    const std::string id = Deploy("hello", Image("hello"), 2, "Feature/Login");
    ASSERT_FALSE(id.empty());
    pb::Deployment d = client_->WaitForFinal(id);
    ExpectReady(d);

    // Exactly `replicas` instances, RUNNING, where the gateway will look for them.
    auto instances = PartitionInstances(*partition_, id);
    ASSERT_EQ(instances.size(), 2u);
    std::set<std::string> addresses;
    net::HttpClient http;
    for (const auto& in : instances) {
      EXPECT_EQ(in.status, "RUNNING") << in.instance_id << ": " << in.reason;
      EXPECT_EQ(in.address.rfind("127.0.0.1:", 0), 0u) << in.address;
      addresses.insert(in.address);
      net::ClientRequest req;
      req.url = "http://" + in.address + "/";
      req.timeout = 5s;
      auto resp = http.Do(req);
      ASSERT_TRUE(resp.ok()) << resp.status().ToString();
      EXPECT_EQ(resp->status, 200);
    }
    EXPECT_EQ(addresses.size(), 2u);
    EXPECT_EQ(ContainersOf(id).size(), 2u);

    // Hostnames, URLs and routes, in the contract's order.
    const std::vector<std::string> hosts = {Host("hello-production"),
                                            Host("hello-git-feature-login"), OwnHost("hello", id)};
    ASSERT_EQ(d.hostnames_size(), 3);
    ASSERT_EQ(d.urls_size(), 3);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(d.hostnames(i), hosts[i]);
      EXPECT_EQ(d.urls(i), "http://" + hosts[i] + ":" + std::to_string(kGatewayPort));
    }
    auto routes = PartitionRoutes(*partition_);
    for (const auto& h : hosts) EXPECT_EQ(routes[h], id) << h;

    // The spec the app serves, as it served it.
    EXPECT_TRUE(d.has_openapi_spec());
    auto spec = client_->Spec(id);
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    EXPECT_EQ(spec->spec(), kOpenApiYaml);
    EXPECT_EQ(spec->path(), "/openapi.yaml");
    EXPECT_NE(spec->content_type().find("yaml"), std::string::npos) << spec->content_type();
    EXPECT_GT(spec->scraped_at_ms(), 0);
  }

  static inline testing::TempDir* suite_dir_ = nullptr;
  static inline InProcessKrane* krane_ = nullptr;

  testing::TempDir dir_;
  std::unique_ptr<storage::S3Server> s3_;
  std::string main_url_, partition_url_;
  std::unique_ptr<CtrlServer> ctrl_;
  std::unique_ptr<CtrlClient> client_;
  std::unique_ptr<db::Database> partition_;
  std::vector<std::string> deployments_;
};

TEST_F(DeployFlowTest, ReachesReadyWithInstancesRoutesUrlsAndSpecOnSqlite) {
  HappyPath(TestDriver::kSqlite);
}

TEST_F(DeployFlowTest, ReachesReadyWithInstancesRoutesUrlsAndSpecOnPostgres) {
  HappyPath(TestDriver::kPostgres);
}

// The whole flow from a source context: upload through the presigned URL, ctrl's docker build,
// then the same steps as an image deployment.
TEST_F(DeployFlowTest, ContextUploadedBuiltAndDeployedReachesReady) {
  StartCtrl(TestDriver::kSqlite);
  testing::TempDir src;
  std::filesystem::copy_file("/bin/busybox", src.path() / "busybox");
  std::filesystem::create_directories(src.path() / "www");
  std::ofstream(src.path() / "www" / "openapi.json") << R"({"openapi":"3.0.0"})";
  std::ofstream(src.path() / "Dockerfile")
      << "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n"
      << R"(CMD ["/bin/busybox","sh","-c","exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www"])"
      << "\n";
  const auto archive = dir_.path() / "context.tar.gz";
  auto tar = testing::RunCommand("tar -C '" + src.str() + "' -czf '" + archive.string() + "' .");
  ASSERT_EQ(tar.exit_code, 0) << tar.output;

  pb::GenerateUploadURLRequest up;
  up.set_project("built");
  up.set_sha256(testing::FileSha256(archive));
  up.set_size(static_cast<int64_t>(std::filesystem::file_size(archive)));
  auto presigned = client_->connect().Call<pb::GenerateUploadURLResponse>(
      net::ConnectProcedure("slipway.ctrl.v1.BuildService", "GenerateUploadURL"), up);
  ASSERT_TRUE(presigned.ok()) << presigned.status().ToString();
  net::HttpClient http;
  net::ClientRequest put;
  put.method = "PUT";
  put.url = presigned->upload_url();
  for (const auto& [name, value] : presigned->upload_headers()) put.headers.Add(name, value);
  put.body_file = archive.string();
  auto uploaded = http.Do(put);
  ASSERT_TRUE(uploaded.ok()) << uploaded.status().ToString();
  ASSERT_EQ(uploaded->status, 200) << uploaded->body;

  pb::CreateDeploymentRequest req;
  req.set_project("built");
  req.set_environment("preview");
  req.mutable_context()->set_context_key(presigned->context_key());
  auto created = client_->connect().Call<pb::CreateDeploymentResponse>(
      net::ConnectProcedure(kDeploymentService, "CreateDeployment"), req);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::string id = created->deployment_id();
  deployments_.push_back(id);
  pb::Deployment d = client_->WaitForFinal(id, 180s);
  ExpectReady(d);
  EXPECT_EQ(d.image(), "built:" + id);
  ASSERT_EQ(d.hostnames_size(), 2);
  EXPECT_EQ(d.hostnames(0), Host("built-preview"));
  EXPECT_EQ(d.hostnames(1), OwnHost("built", id));
  auto instances = PartitionInstances(*partition_, id);
  ASSERT_EQ(instances.size(), 1u);
  EXPECT_EQ(instances[0].status, "RUNNING");
  auto spec = client_->Spec(id);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->path(), "/openapi.json");
  EXPECT_EQ(spec->spec(), R"({"openapi":"3.0.0"})");

  ctrl_->Shutdown();
  RemoveContainersOf(id);
  (void)Docker("DELETE", "/images/" + net::UriEncode("built:" + id) + "?force=1&noprune=1");
}

TEST_F(DeployFlowTest, SecondDeployMovesEnvironmentAndBranchHostsButNotTheFirstsOwn) {
  StartCtrl(TestDriver::kSqlite);
  const std::string first = Deploy("shop", Image("hello"), 1, "main");
  ASSERT_FALSE(first.empty());
  ExpectReady(client_->WaitForFinal(first));
  const std::string second = Deploy("shop", Image("plain"), 1, "main");
  ASSERT_FALSE(second.empty());
  pb::Deployment d2 = client_->WaitForFinal(second);
  ExpectReady(d2);

  auto routes = PartitionRoutes(*partition_);
  EXPECT_EQ(routes[Host("shop-production")], second);
  EXPECT_EQ(routes[Host("shop-git-main")], second);
  EXPECT_EQ(routes[OwnHost("shop", first)], first);
  EXPECT_EQ(routes[OwnHost("shop", second)], second);
  EXPECT_EQ(routes.size(), 4u);

  // The first deployment keeps running and keeps its own host.
  auto d1 = client_->Get(first);
  ASSERT_TRUE(d1.ok());
  EXPECT_EQ(d1->status(), pb::DEPLOYMENT_STATUS_READY);
  auto first_instances = PartitionInstances(*partition_, first);
  ASSERT_EQ(first_instances.size(), 1u);
  EXPECT_EQ(first_instances[0].status, "RUNNING");

  // The second app serves no spec: the deployment is READY all the same, without one.
  EXPECT_FALSE(d2.has_openapi_spec());
  auto spec = client_->Spec(second);
  EXPECT_EQ(spec.status().code(), Code::kNotFound) << spec.status().ToString();
  EXPECT_TRUE(d1->has_openapi_spec());
}

TEST_F(DeployFlowTest, AppThatExitsAtStartFailsAtWaitWithinSecondsWithExitCodeAndLog) {
  StartCtrl(TestDriver::kSqlite, /*wait_deadline=*/120s);
  const auto start = std::chrono::steady_clock::now();
  const std::string id = Deploy("crashy", Image("crash"), 2);
  ASSERT_FALSE(id.empty());
  pb::Deployment d = client_->WaitForFinal(id, 100s);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(d.status(), pb::DEPLOYMENT_STATUS_FAILED) << d.DebugString();
  // Well before the 2-minute deadline: a FAILED instance ends the wait at once.
  EXPECT_LT(elapsed, 60s);
  std::cout << "FAILED after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
            << " ms: " << d.error() << "\n";
  EXPECT_EQ(d.failed_step(), "wait");
  EXPECT_NE(d.error().find("exit code 3"), std::string::npos) << d.error();
  EXPECT_NE(d.error().find("boom"), std::string::npos) << d.error();
  EXPECT_NE(d.error().find(id + "-"), std::string::npos) << "names the instance: " << d.error();
  const auto* wait = FindStep(d, "wait");
  ASSERT_NE(wait, nullptr);
  EXPECT_EQ(wait->status(), pb::STEP_STATUS_FAILED);
  EXPECT_EQ(d.hostnames_size(), 0);
  ExpectNothingLeft(id);
}

TEST_F(DeployFlowTest, AppThatNeverListensFailsAtTheDeadlineNamingTheInstance) {
  StartCtrl(TestDriver::kSqlite, /*wait_deadline=*/3s);
  const auto start = std::chrono::steady_clock::now();
  const std::string id = Deploy("sleepy", Image("sleeper"), 1);
  ASSERT_FALSE(id.empty());
  pb::Deployment d = client_->WaitForFinal(id, 60s);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(d.status(), pb::DEPLOYMENT_STATUS_FAILED) << d.DebugString();
  EXPECT_GE(elapsed, 3s);
  std::cout << "FAILED after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
            << " ms: " << d.error() << "\n";
  EXPECT_EQ(d.failed_step(), "wait");
  EXPECT_NE(d.error().find(id + "-0"), std::string::npos) << d.error();
  EXPECT_NE(d.error().find("never became ready"), std::string::npos) << d.error();
  EXPECT_NE(d.error().find("3s"), std::string::npos) << "names the deadline: " << d.error();
  ExpectNothingLeft(id);
}

// An app that listens, but not on the PORT it was given, is never ready: the same clear failure
// as one that never listens, and nothing is left running or routed.
TEST_F(DeployFlowTest, AppThatListensOnTheWrongPortFailsAtTheDeadlineNamingTheInstance) {
  StartCtrl(TestDriver::kSqlite, /*wait_deadline=*/3s);
  const std::string id = Deploy("wrongport", Image("wrongport"), 1);
  ASSERT_FALSE(id.empty());
  pb::Deployment d = client_->WaitForFinal(id, 60s);
  ASSERT_EQ(d.status(), pb::DEPLOYMENT_STATUS_FAILED) << d.DebugString();
  EXPECT_EQ(d.failed_step(), "wait");
  EXPECT_NE(d.error().find(id + "-0"), std::string::npos) << d.error();
  EXPECT_NE(d.error().find("never became ready"), std::string::npos) << d.error();
  EXPECT_EQ(d.hostnames_size(), 0);
  ExpectNothingLeft(id);
}

TEST_F(DeployFlowTest, AnImageThatDoesNotExistFailsAtScheduleAndLeavesNothing) {
  StartCtrl(TestDriver::kSqlite);
  const std::string id = Deploy("ghost", "slipway-test/no-such-image:" + RunTag(), 1);
  ASSERT_FALSE(id.empty());
  pb::Deployment d = client_->WaitForFinal(id, 60s);
  ASSERT_EQ(d.status(), pb::DEPLOYMENT_STATUS_FAILED) << d.DebugString();
  EXPECT_EQ(d.failed_step(), "schedule");
  std::cout << "FAILED: " << d.error() << "\n";
  EXPECT_NE(d.error().find("no-such-image"), std::string::npos) << d.error();
  ExpectNothingLeft(id);
}

TEST_F(DeployFlowTest, AProjectNameTakenInAnotherWorkspaceFailsAtRouteAndLeavesNothing) {
  StartCtrl(TestDriver::kSqlite);
  const std::string first = Deploy("twin", Image("hello"), 1);
  ASSERT_FALSE(first.empty());
  ExpectReady(client_->WaitForFinal(first));

  auto other_token = ctrl_->IssueToken("another-workspace");
  ASSERT_TRUE(other_token.ok()) << other_token.status().ToString();
  CtrlClient other(ctrl_->endpoint(), *other_token);
  auto second = other.DeployImage("twin", Image("plain"), 1);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  deployments_.push_back(*second);
  pb::Deployment d = other.WaitForFinal(*second);
  ASSERT_EQ(d.status(), pb::DEPLOYMENT_STATUS_FAILED) << d.DebugString();
  EXPECT_EQ(d.failed_step(), "route");
  EXPECT_NE(d.error().find("twin-production.localhost"), std::string::npos) << d.error();
  EXPECT_NE(d.error().find("different project name"), std::string::npos) << d.error();
  std::cout << "FAILED: " << d.error() << "\n";
  ExpectNothingLeft(*second);
  // Another workspace cannot read the first one's spec, nor learn that it exists.
  auto foreign = other.Spec(first);
  EXPECT_EQ(foreign.status().code(), Code::kNotFound) << foreign.status().ToString();
  // The first workspace's deployment still holds its hosts.
  EXPECT_EQ(PartitionRoutes(*partition_)[Host("twin-production")], first);
}

TEST(DeployCtrlStartTest, KraneWithoutAPartitionDatabaseIsRefusedSayingWhatToSet) {
  testing::TempDir dir;
  auto s3 = StartS3(dir.path() / "s3");
  ASSERT_NE(s3, nullptr);
  CtrlOptions o;
  o.listen = "127.0.0.1:0";
  o.database_url = (dir.path() / "main.db").string();
  o.s3.endpoint = s3->endpoint();
  o.s3.credentials.access_key = kS3Access;
  o.s3.credentials.secret_key = kS3Secret;
  o.krane_url = "http://127.0.0.1:1";
  o.krane_token = kKraneToken;
  auto server = CtrlServer::Start(o);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), Code::kInvalidArgument);
  EXPECT_NE(server.status().message().find("PARTITION_DATABASE_URL"), std::string::npos)
      << server.status().message();
  s3->Shutdown();
}

}  // namespace
}  // namespace slipway::ctrl::deploy_test
