// Faults in the parts ctrl depends on, each injected into a deployment in flight, on SQLite and
// on PostgreSQL where a database is involved: dockerd restarted while the instances are waited
// for, krane SIGKILLed and started again, the object store down when the build starts, the
// PostgreSQL server restarted, the gateway restarted under a stream of requests, and one of two
// ctrl processes on one PostgreSQL SIGKILLed. Every test states which end it expects (READY, or
// FAILED with a reason naming what failed) and why that end is the right one, and checks that
// nothing of the deployment is left running or leaked (ExpectCleanEnd).
//
// The daemons a test restarts are its own (PrivateDockerd, PrivatePostgres): the shared dockerd
// and PostgreSQL that other tests run on are never stopped.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "integration/faults/fault_stack.h"
#include "net/http_client.h"
#include "support/kubernetes_cluster.h"
#include "support/private_dockerd.h"

namespace slipway::faults {
namespace {

using dt::FindStep;

bool WaitStepRunning(const pb::Deployment& d) {
  const auto* schedule = FindStep(d, "schedule");
  const auto* wait = FindStep(d, "wait");
  return schedule && schedule->status() == pb::STEP_STATUS_SUCCEEDED && wait &&
         wait->status() == pb::STEP_STATUS_RUNNING;
}

std::string Describe(const pb::Deployment& d) {
  return std::string(pb::DeploymentStatus_Name(d.status())) + " (failed step \"" +
         d.failed_step() + "\": " + d.error() + ")";
}

// Suites over both databases build the app images once; the PostgreSQL cluster is the test's.
class FaultTest : public ::testing::TestWithParam<Databases> {
 protected:
  static void SetUpTestSuite() {
    images_ = new testing::TempDir();
    dt::BuildAppImages(images_->path());
  }
  static void TearDownTestSuite() {
    dt::RemoveAppImages();
    delete images_;
  }
  void SetUp() override {
    if (GetParam() == Databases::kPostgres) postgres_ = std::make_unique<testing::PrivatePostgres>();
    stack_ = std::make_unique<FaultStack>(postgres_.get());
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_->Logs();
    stack_.reset();
    for (const auto& id : deployments_) dt::RemoveContainersOf(id);
    postgres_.reset();
  }

  // A deployment of a ready-made image, remembered for cleanup.
  std::string Deploy(const std::string& project, const std::string& image, int replicas) {
    auto client = stack_->Client();
    auto id = client.DeployImage(project, image, replicas);
    EXPECT_TRUE(id.ok()) << id.status().ToString() << stack_->Logs();
    if (!id.ok()) return "";
    deployments_.push_back(*id);
    return *id;
  }
  pb::Deployment WaitUntilWaiting(const std::string& id) {
    return stack_->Client().WaitFor(id, 60s, WaitStepRunning);
  }

  static inline testing::TempDir* images_ = nullptr;
  std::unique_ptr<testing::PrivatePostgres> postgres_;
  std::unique_ptr<FaultStack> stack_;
  std::vector<std::string> deployments_;
};

// dockerd (the test's own) is stopped and started again while ctrl waits for two instances of
// an app that listens only 5 s after it starts. Expected: READY. Why: the daemon stops the
// containers with it and, by their restart policy (unless-stopped), starts the same two
// containers again when it comes back; krane answers Unavailable while the daemon is away,
// which the wait step treats as transient and asks again, within its deadline.
TEST_P(FaultTest, DockerdRestartedWhileInstancesAreAwaitedEndsReady) {
  testing::PrivateDockerd dockerd;
  ASSERT_TRUE(dockerd.problem().empty()) << dockerd.problem();
  std::string error;
  const std::string image = testing::BuildAndPushImage(
      "slipway-test/fault-slow:" + dt::RunTag(),
      R"(CMD ["/bin/busybox","sh","-c","/bin/busybox sleep 5; exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www"])",
      &error);
  ASSERT_FALSE(image.empty()) << error;
  stack_->StartAll(dockerd.host());
  const std::string id = Deploy("dockerd-restart", image, 2);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitStepRunning(WaitUntilWaiting(id))) << stack_->Logs();
  auto count = [&] {
    auto r = dockerd.Docker("ps -aq --filter label=slipway.deployment=" + id + " | wc -l");
    return std::atoi(r.output.c_str());
  };
  const auto before = dockerd.Docker("ps -aq --no-trunc --filter label=slipway.deployment=" + id);
  ASSERT_EQ(count(), 2) << "krane created both containers before the restart";

  dockerd.Stop();
  std::this_thread::sleep_for(2s);  // ctrl asks krane several times while the daemon is away
  ASSERT_TRUE(dockerd.Start()) << dockerd.problem();

  pb::Deployment d = stack_->Client().WaitForFinal(id, 120s);
  EXPECT_EQ(d.status(), pb::DEPLOYMENT_STATUS_READY)
      << "a dockerd restart must not fail a deployment whose containers come back: "
      << Describe(d) << stack_->Logs();
  EXPECT_EQ(dockerd.Docker("ps -aq --no-trunc --filter label=slipway.deployment=" + id).output,
            before.output)
      << "READY on the same two containers, none created again";
  const int running =
      std::atoi(dockerd.Docker("ps -q --filter label=slipway.deployment=" + id + " | wc -l")
                    .output.c_str());
  ExpectCleanEnd(*stack_, d, 2, running, "READY after the dockerd restart");
  dockerd.Docker("rmi -f " + image);
}

// krane is SIGKILLed while ctrl waits for the instances, and started again 2 s later. Expected:
// READY. Why: krane keeps no state of its own (the containers and their labels are the state),
// so the new process answers for the containers the old one created; ctrl's calls to the dead
// krane fail as Unavailable, which the wait step retries.
TEST_P(FaultTest, KraneKilledAndRestartedMidDeployEndsReady) {
  stack_->StartAll();
  const std::string id = Deploy("krane-restart", dt::Image("slow"), 2);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitStepRunning(WaitUntilWaiting(id))) << stack_->Logs();
  stack_->KillKrane();
  std::this_thread::sleep_for(2s);
  stack_->StartKrane();

  pb::Deployment d = stack_->Client().WaitForFinal(id, 120s);
  EXPECT_EQ(d.status(), pb::DEPLOYMENT_STATUS_READY)
      << "krane restarted mid-deploy must not fail the deployment: " << Describe(d)
      << stack_->Logs();
  int running = 0;
  for (const auto& c : dt::ContainersOf(id)) running += c["State"] == "running";
  ExpectCleanEnd(*stack_, d, 2, running, "READY after the krane restart");
}

// The object store is down (SIGKILLed) when a deployment's build starts, and back 3 s later.
// To make "when the build starts" exact, the deployment is queued behind another of the same
// project (runs of a project go one at a time) and the store is killed while that one waits.
// Expected: READY. Why: the builder reads the context through a presigned GET of the store; an
// unreachable store is a transient fault, so the build step is tried again (with backoff) and
// succeeds once the store answers again with the context it kept on disk. Before that, a
// CreateDeployment while the store is down is refused as Unavailable, naming the object store,
// and creates nothing: ctrl checks that the context is there before it accepts the deployment.
TEST_P(FaultTest, ObjectStoreDownWhenTheBuildStartsEndsReadyOnceItIsBack) {
  stack_->StartAll();
  auto client = stack_->Client();
  const std::string key =
      dt::UploadSiteContext(client, "store-outage", "built after an outage", stack_->dir().path());
  ASSERT_FALSE(key.empty());

  stack_->KillS3();
  pb::CreateDeploymentRequest create;
  create.set_project("store-outage");
  create.mutable_context()->set_context_key(key);
  auto refused = client.connect().Call<pb::CreateDeploymentResponse>(
      net::ConnectProcedure(dt::kDeploymentService, "CreateDeployment"), create);
  ASSERT_FALSE(refused.ok()) << "accepted a deployment whose context cannot be read";
  EXPECT_EQ(refused.status().code(), Code::kUnavailable) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("object store"), std::string::npos)
      << refused.status().ToString();
  auto main = db::Open(stack_->main_db());
  ASSERT_TRUE(main.ok()) << main.status().ToString();
  EXPECT_EQ(Count(**main, "SELECT COUNT(*) AS n FROM deployments WHERE id <> $1", ""), 0)
      << "the refused CreateDeployment left a deployment row";
  stack_->StartS3();

  const std::string first = Deploy("store-outage", dt::Image("slow"), 1);
  ASSERT_FALSE(first.empty());
  ASSERT_TRUE(WaitStepRunning(WaitUntilWaiting(first))) << stack_->Logs();
  const std::string id = dt::DeployContext(client, "store-outage", key);
  ASSERT_FALSE(id.empty()) << stack_->Logs();
  deployments_.push_back(id);
  stack_->KillS3();
  pb::Deployment building = client.WaitFor(id, 60s, [](const pb::Deployment& d) {
    const auto* build = FindStep(d, "build");
    return build && build->status() != pb::STEP_STATUS_PENDING;
  });
  ASSERT_NE(FindStep(building, "build")->status(), pb::STEP_STATUS_PENDING)
      << "the build never started: " << building.DebugString();
  std::this_thread::sleep_for(3s);
  stack_->StartS3();

  pb::Deployment d = client.WaitForFinal(id, 180s);
  EXPECT_EQ(d.status(), pb::DEPLOYMENT_STATUS_READY)
      << "an object store back within seconds must not fail the build: " << Describe(d)
      << stack_->Logs();
  int running = 0;
  for (const auto& c : dt::ContainersOf(id)) running += c["State"] == "running";
  ExpectCleanEnd(*stack_, d, 1, running, "READY after the store came back");
  (void)dt::Docker("DELETE", "/images/" + net::UriEncode(d.image()) + "?force=1&noprune=1");
}

// The gateway is stopped (SIGTERM) and later SIGKILLed, each time started again, while a client
// sends requests to a READY deployment without pause. Expected: the deployment stays READY and
// routed. Why: the gateway keeps no state (it loads routes from the partition database), so
// each new process serves the same routes; while it is away requests cannot connect, but no
// request is ever answered by the wrong app or with an error of the gateway's own.
TEST_P(FaultTest, GatewayRestartedUnderAStreamOfRequestsKeepsServingTheDeployment) {
  stack_->StartAll();
  const std::string id = Deploy("gateway-restart", dt::Image("hello"), 1);
  ASSERT_FALSE(id.empty());
  pb::Deployment ready = stack_->Client().WaitForFinal(id, 90s);
  ASSERT_EQ(ready.status(), pb::DEPLOYMENT_STATUS_READY) << Describe(ready) << stack_->Logs();

  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, refused{0};
  std::mutex mu;
  std::vector<std::string> wrong;  // answers that are neither the app's page nor a refusal
  std::thread client([&] {
    net::HttpClient http;
    net::ClientRequest req;
    req.url = "http://127.0.0.1:" + std::to_string(stack_->gateway_port()) + "/";
    req.headers.Add("Host", "gateway-restart-production.localhost");
    req.max_attempts = 1;
    req.timeout = 10s;
    while (!stop) {
      auto r = http.Do(req);
      if (!r.ok()) {
        ++refused;
        std::this_thread::sleep_for(5ms);
      } else if (r->status == 200 && r->body == "hello from a deployment\n") {
        ++answered;
      } else {
        std::lock_guard<std::mutex> lock(mu);
        wrong.push_back(std::to_string(r->status) + " " + r->body);
      }
    }
  });
  auto answered_after = [&](int n) {
    for (int i = 0; i < 300 && answered < n; ++i) std::this_thread::sleep_for(50ms);
    return answered.load();
  };
  ASSERT_GT(answered_after(20), 19) << "the stream never got going";
  stack_->StopGateway();
  std::this_thread::sleep_for(500ms);
  stack_->StartGateway();
  const int after_first = answered;
  EXPECT_GT(answered_after(after_first + 20), after_first + 19)
      << "requests are answered again after a graceful restart";
  stack_->KillGateway();
  std::this_thread::sleep_for(500ms);
  stack_->StartGateway();
  const int after_second = answered;
  EXPECT_GT(answered_after(after_second + 20), after_second + 19)
      << "requests are answered again after a SIGKILL and restart";
  stop = true;
  client.join();
  EXPECT_TRUE(wrong.empty()) << "the gateway answered " << wrong.size()
                             << " requests with something else than the app's page, first: "
                             << (wrong.empty() ? "" : wrong.front());
  EXPECT_GT(refused.load(), 0) << "the restarts were not seen by the client at all";

  pb::Deployment d = stack_->Client().Get(id).value();
  EXPECT_EQ(d.status(), pb::DEPLOYMENT_STATUS_READY) << "a gateway restart changes no deployment";
  int running = 0;
  for (const auto& c : dt::ContainersOf(id)) running += c["State"] == "running";
  ExpectCleanEnd(*stack_, d, 1, running, "still READY after two gateway restarts");
}

INSTANTIATE_TEST_SUITE_P(Databases, FaultTest,
                         ::testing::Values(Databases::kSqlite, Databases::kPostgres),
                         [](const auto& info) { return DatabasesName(info.param); });

// Faults of PostgreSQL itself, and of ctrl processes sharing one: PostgreSQL only.
class PostgresFaultTest : public FaultTest {};

// The PostgreSQL server (the test's own cluster) is shut down at once (every connection cut)
// while ctrl waits for the instances, and started again 3 s later. Expected: READY. Why: every
// database call in the meantime fails as Unavailable; the pool drops broken connections and
// opens new ones once the server is back, the workflow engine keeps the lease it journaled and
// the wait step resumes where the journal says.
TEST_P(PostgresFaultTest, PostgresRestartedMidDeployEndsReady) {
  stack_->StartAll();
  const std::string id = Deploy("postgres-restart", dt::Image("slow"), 2);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitStepRunning(WaitUntilWaiting(id))) << stack_->Logs();
  postgres_->Stop();
  std::this_thread::sleep_for(3s);
  postgres_->Start();

  pb::Deployment d = stack_->Client().WaitForFinal(id, 120s);
  EXPECT_EQ(d.status(), pb::DEPLOYMENT_STATUS_READY)
      << "a PostgreSQL restart must not fail a deployment: " << Describe(d) << stack_->Logs();
  int running = 0;
  for (const auto& c : dt::ContainersOf(id)) running += c["State"] == "running";
  ExpectCleanEnd(*stack_, d, 2, running, "READY after the PostgreSQL restart");
}

// Two ctrl processes on one PostgreSQL; the one that holds the deployment's run is SIGKILLed
// while it waits for the instances. Expected: READY, finished by the other. Why: the run's
// lease (2 s here) runs out, the surviving ctrl claims the run with FOR UPDATE SKIP LOCKED and
// resumes at its first unfinished step, and krane's idempotent create adds no container.
TEST_P(PostgresFaultTest, TwoCtrlsOnOnePostgresOneKilledMidDeployTheOtherEndsItReady) {
  stack_->StartAll();
  stack_->StartCtrl(1);
  const std::string id = Deploy("two-ctrls", dt::Image("slow"), 2);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitStepRunning(WaitUntilWaiting(id))) << stack_->Logs();
  auto main = db::Open(stack_->main_db());
  ASSERT_TRUE(main.ok()) << main.status().ToString();
  auto owner = (*main)->QueryRow(
      "SELECT owner FROM workflow_runs WHERE input LIKE '%' || $1 || '%' AND status = 'running'",
      {id});
  ASSERT_TRUE(owner.ok() && *owner) << "no running run holds the deployment";
  const std::string holder = (**owner)["owner"].AsText();
  // The owner is "<host>/<pid>/<random>".
  const int victim = holder.find("/" + std::to_string(stack_->CtrlPid(0)) + "/") != std::string::npos ? 0 : 1;
  ASSERT_NE(holder.find("/" + std::to_string(stack_->CtrlPid(victim)) + "/"), std::string::npos)
      << "the run's owner " << holder << " is neither ctrl";
  auto before = dt::ContainersOf(id);
  stack_->KillCtrl(victim);

  pb::Deployment d = stack_->Client(1 - victim).WaitForFinal(id, 120s);
  EXPECT_EQ(d.status(), pb::DEPLOYMENT_STATUS_READY)
      << "the surviving ctrl must finish the deployment: " << Describe(d) << stack_->Logs();
  auto after = (*main)->QueryRow("SELECT owner FROM workflow_runs WHERE input LIKE '%' || $1 || '%'",
                                 {id});
  ASSERT_TRUE(after.ok() && *after);
  EXPECT_NE((**after)["owner"].AsText(), holder) << "the killed ctrl cannot have finished it";
  int running = 0;
  for (const auto& c : dt::ContainersOf(id)) running += c["State"] == "running";
  EXPECT_EQ(dt::ContainersOf(id).size(), before.size()) << "the survivor created containers again";
  ExpectCleanEnd(*stack_, d, 2, running, "READY, finished by the surviving ctrl");
}

INSTANTIATE_TEST_SUITE_P(Databases, PostgresFaultTest, ::testing::Values(Databases::kPostgres),
                         [](const auto& info) { return DatabasesName(info.param); });

}  // namespace
}  // namespace slipway::faults
