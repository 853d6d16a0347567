// `slipway dev --build-backend depot` end to end through the CLI, against the Depot stand-in
// (tests/peers/depot-standin: Depot's API, since the hosted one cannot be reached from here)
// whose machines are the real buildkitd over mutual TLS, pushing to the real local registry:
// a deploy reaches READY and answers; one Depot project per project of ours, also when two
// first deploys race and when our record of it was lost; health reported during a long build;
// the real outcome finished on Depot (success, the builder's error); a refused token and a
// machine pending past the deadline fail the build step clearly; ctrl SIGKILLed mid-build ends
// READY with every Depot build it started finished.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <future>

#include "integration/e2e/dev_stack.h"
#include "support/auth_registry.h"
#include "support/buildkit_peer.h"
#include "support/depot_standin.h"
#include "support/test_support.h"

namespace slipway::testing {
namespace {

using Json = nlohmann::json;

class DepotDeployTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!BuildkitProblem().empty()) return;
    depot_ = new DepotStandIn();
    if (!depot_->ready()) return;
    // Depot's registry as it behaves: pushes and pulls need user x-token and the Depot token.
    registry_ = new AuthRegistry("x-token", DepotStandIn::kToken);
    stack_ = new DevStack({"--build-backend", "depot", "--depot-token", DepotStandIn::kToken,
                           "--depot-api-url", depot_->url(), "--depot-registry", registry_->host(),
                           "--depot-machine-timeout", "4s", "--wait-interval", "250ms"});
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
    delete depot_;
    depot_ = nullptr;
    delete registry_;
    registry_ = nullptr;
  }
  void SetUp() override {
    std::string problem = BuildkitProblem();
    ASSERT_TRUE(problem.empty()) << problem;
    ASSERT_TRUE(depot_ != nullptr && depot_->ready()) << (depot_ ? depot_->log() : "");
    ASSERT_TRUE(stack_ != nullptr && stack_->ready()) << (stack_ ? stack_->log() : "");
    depot_->Set({{"token", DepotStandIn::kToken}, {"machine_pending_ms", 0}});
  }

  static std::string Sql(const std::string& statement) {
    CommandResult r = RunCommand("sqlite3 " + (stack_->dir() / "data/main.db").string() + " \"" +
                                 statement + "\"");
    std::string out = r.output;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }
  static std::string ProjectId(const std::string& name) {
    return Sql("SELECT id FROM projects WHERE name = '" + name + "'");
  }
  // The Depot projects the stand-in holds for our project of that name.
  static std::vector<Json> DepotProjectsOf(const std::string& name) {
    return depot_->ProjectsNamed("slipway-" + ProjectId(name));
  }

  static DepotStandIn* depot_;
  static AuthRegistry* registry_;
  static DevStack* stack_;
};
DepotStandIn* DepotDeployTest::depot_ = nullptr;
AuthRegistry* DepotDeployTest::registry_ = nullptr;
DevStack* DepotDeployTest::stack_ = nullptr;

// Different in every run: a RUN step that must really run carries it.
std::string RunMarker() {
  return std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
}

std::string ContainerImage(const std::string& deployment_id) {
  auto containers = InspectContainersOf(deployment_id);
  return containers.empty() ? "" : containers[0]["Config"].value("Image", "");
}

TEST_F(DepotDeployTest, DeployReachesReadyAndOneDepotProjectHoldsEveryBuildOfAProject) {
  // Depot keeps the machine pending for a while first, as it does while provisioning.
  depot_->Set({{"machine_pending_ms", 1500}});
  fs::path app = HelloApp(stack_->dir(), "dphello", "built on depot");
  auto d = stack_->Deploy(app);
  ASSERT_EQ(d.exit_code, 0) << d.output << "\n" << stack_->log();
  ExpectReadyAndAnswering(d, "built on depot");
  if (HasFatalFailure()) return;

  auto projects = DepotProjectsOf("dphello");
  ASSERT_EQ(projects.size(), 1u) << ProjectId("dphello") << "\n"
                                 << depot_->State()["projects"].dump();
  const std::string depot_project = projects[0].value("project_id", "");
  EXPECT_EQ(projects[0].value("region_id", ""), "us-east-1");
  EXPECT_EQ(projects[0].value("keep_gb", 0), 50);
  EXPECT_EQ(projects[0].value("keep_days", 0), 14);
  EXPECT_EQ(Sql("SELECT depot_project_id FROM projects WHERE name = 'dphello'"), depot_project);

  // The image is the Depot project's, tagged <project>-<deployment>, pushed with the token and
  // pulled by krane with it (the registry refuses anonymous pulls), run pinned by digest.
  const std::string id = d.result.value("deployment_id", "");
  std::string image = ContainerImage(id);
  EXPECT_EQ(image.rfind(registry_->host() + "/" + depot_project + ":dphello-" + id + "@sha256:", 0),
            0u)
      << image;

  auto builds = depot_->BuildsOf(depot_project);
  ASSERT_EQ(builds.size(), 1u);
  EXPECT_EQ(builds[0]["outcome"].value("result", ""), "success") << builds[0].dump();
  EXPECT_EQ(builds[0]["finishes"].size(), 1u) << builds[0].dump();
  EXPECT_GT(builds[0]["machine"].value("pending_answers", 0), 0) << builds[0].dump();
  EXPECT_EQ(builds[0]["machine"].value("platform", ""), "BUILDER_PLATFORM_AMD64");

  // A second deploy of the project builds in the same Depot project.
  auto again = stack_->Deploy(app);
  ASSERT_EQ(again.result.value("status", ""), "READY") << again.output << "\n" << stack_->log();
  EXPECT_EQ(DepotProjectsOf("dphello").size(), 1u) << depot_->State().dump();
  builds = depot_->BuildsOf(depot_project);
  ASSERT_EQ(builds.size(), 2u);
  EXPECT_EQ(builds[1]["outcome"].value("result", ""), "success");

  // Another project gets a Depot project of its own.
  auto other = stack_->Deploy(HelloApp(stack_->dir(), "dpother", "another project"));
  ASSERT_EQ(other.result.value("status", ""), "READY") << other.output << "\n" << stack_->log();
  auto others = DepotProjectsOf("dpother");
  ASSERT_EQ(others.size(), 1u);
  EXPECT_NE(others[0].value("project_id", ""), depot_project);
  EXPECT_EQ(DepotProjectsOf("dphello").size(), 1u);
}

TEST_F(DepotDeployTest, TwoFirstDeploysAtTheSameMomentMakeOneDepotProject) {
  fs::path app = HelloApp(stack_->dir(), "dprace", "raced");
  auto deploy = [&](const std::string& tag) {
    return RunCommand(SlipwayBinary() + " deploy " + app.string() +
                          " --poll-interval 250ms --json 2>" +
                          (stack_->dir() / ("race-" + tag + ".err")).string(),
                      stack_->env());
  };
  auto a = std::async(std::launch::async, deploy, "a");
  auto b = std::async(std::launch::async, deploy, "b");
  CommandResult ra = a.get(), rb = b.get();
  for (const auto& r : {ra, rb}) {
    EXPECT_EQ(r.exit_code, 0) << r.output << ReadFile(stack_->dir() / "race-a.err")
                              << ReadFile(stack_->dir() / "race-b.err");
    Json j = Json::parse(
        r.output.substr(r.output.rfind("\n{") == std::string::npos ? 0 : r.output.rfind("\n{") + 1),
        nullptr, false);
    if (j.is_object()) stack_->Track(j.value("deployment_id", ""));
  }
  auto projects = DepotProjectsOf("dprace");
  ASSERT_EQ(projects.size(), 1u) << depot_->State()["projects"].dump();
  auto builds = depot_->BuildsOf(projects[0].value("project_id", ""));
  ASSERT_EQ(builds.size(), 2u);
  for (const auto& build : builds) EXPECT_EQ(build["outcome"].value("result", ""), "success");
}

TEST_F(DepotDeployTest, LostRecordOfTheDepotProjectFindsItOnDepotInsteadOfCreatingASecond) {
  fs::path app = HelloApp(stack_->dir(), "dplost", "found again");
  ASSERT_EQ(stack_->Deploy(app).result.value("status", ""), "READY");
  ASSERT_EQ(DepotProjectsOf("dplost").size(), 1u);
  // As if ctrl had died between Depot's answer to CreateProject and its own write.
  Sql("UPDATE projects SET depot_project_id = '' WHERE name = 'dplost'");
  ASSERT_EQ(Sql("SELECT depot_project_id FROM projects WHERE name = 'dplost'"), "");
  auto d = stack_->Deploy(app);
  ASSERT_EQ(d.result.value("status", ""), "READY") << d.output;
  auto projects = DepotProjectsOf("dplost");
  ASSERT_EQ(projects.size(), 1u) << depot_->State()["projects"].dump();
  EXPECT_EQ(Sql("SELECT depot_project_id FROM projects WHERE name = 'dplost'"),
            projects[0].value("project_id", ""));
}

TEST_F(DepotDeployTest, HealthIsReportedEveryFiveSecondsDuringALongBuild) {
  fs::path app = HelloApp(stack_->dir(), "dpslow", "slow build");
  // Unique to this run, so no earlier run's cache on the shared buildkitd skips the step.
  std::ofstream(app / "Dockerfile", std::ios::app)
      << "RUN sleep 12 && echo slow-step-done " << RunMarker() << "\n";
  auto d = stack_->Deploy(app);
  ASSERT_EQ(d.result.value("status", ""), "READY") << d.output << "\n" << stack_->log();
  auto projects = DepotProjectsOf("dpslow");
  ASSERT_EQ(projects.size(), 1u);
  auto builds = depot_->BuildsOf(projects[0].value("project_id", ""));
  ASSERT_EQ(builds.size(), 1u);
  const Json& build = builds[0];
  const Json& health = build["health"];
  ASSERT_GE(health.size(), 3u) << build.dump();
  const int64_t active = build["machine"].value("active_at", int64_t{0});
  const int64_t finished = build["finishes"][0].value("at", int64_t{0});
  ASSERT_GT(finished - active, 10'000) << "the build took more than 10 s on its machine";
  int during = 0;
  for (size_t i = 0; i < health.size(); ++i) {
    const int64_t at = health[i].value("at", int64_t{0});
    EXPECT_LE(at, finished) << "no health report after FinishBuild";
    during += at >= active ? 1 : 0;
    EXPECT_EQ(health[i].value("platform", ""), "BUILDER_PLATFORM_AMD64");
    if (i > 0) {
      const int64_t gap = at - health[i - 1].value("at", int64_t{0});
      EXPECT_GE(gap, 4'000) << health.dump();
      EXPECT_LE(gap, 7'000) << health.dump();
    }
  }
  EXPECT_GE(during, 2) << health.dump();
  EXPECT_EQ(build["outcome"].value("result", ""), "success");
}

TEST_F(DepotDeployTest, FailingRunIsFinishedOnDepotAsAnErrorWithTheBuildersMessage) {
  fs::path dir = stack_->dir() / "dpbroken";
  fs::create_directories(dir);
  std::ofstream(dir / "Dockerfile") << "FROM slipway/busybox:1\nRUN echo resolving deps && echo "
                                       "missing-module-xyz >&2 && exit 7\n";
  auto d = stack_->Deploy(dir);
  EXPECT_NE(d.exit_code, 0);
  ASSERT_EQ(d.result.value("status", ""), "FAILED") << d.output;
  EXPECT_EQ(d.result.value("failed_step", ""), "build") << d.result.dump();
  const std::string error = d.result.value("error", "");
  EXPECT_NE(error.find("missing-module-xyz"), std::string::npos) << error;

  auto projects = DepotProjectsOf("dpbroken");
  ASSERT_EQ(projects.size(), 1u);
  auto builds = depot_->BuildsOf(projects[0].value("project_id", ""));
  ASSERT_EQ(builds.size(), 1u) << "a failing RUN is not retried";
  const Json& outcome = builds[0]["outcome"];
  EXPECT_EQ(outcome.value("result", ""), "error") << builds[0].dump();
  const std::string reported = outcome.value("error", "");
  EXPECT_NE(reported.find("missing-module-xyz"), std::string::npos) << reported;
  EXPECT_NE(reported.find("exit code: 7"), std::string::npos) << reported;
  EXPECT_NE(error.find(reported), std::string::npos) << "Depot got the error the user sees";
}

TEST_F(DepotDeployTest, RefusedTokenFailsTheDeployAtTheBuildStepAtOnce) {
  depot_->Set({{"token", "a-token-our-ctrl-does-not-have"}});
  const size_t requests_before = depot_->State()["requests"].size();
  auto start = Clock::now();
  auto d = stack_->Deploy(HelloApp(stack_->dir(), "dprefused", "never built"));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  depot_->Set({{"token", DepotStandIn::kToken}});
  EXPECT_NE(d.exit_code, 0);
  ASSERT_EQ(d.result.value("status", ""), "FAILED") << d.output;
  EXPECT_EQ(d.result.value("failed_step", ""), "build") << d.result.dump();
  const std::string error = d.result.value("error", "");
  EXPECT_NE(error.find("Depot refused the token in DEPOT_TOKEN"), std::string::npos) << error;
  EXPECT_NE(error.find("set DEPOT_TOKEN"), std::string::npos) << error;
  // No retries: Depot was asked once, and refused once.
  Json requests = depot_->State()["requests"];
  ASSERT_EQ(requests.size(), requests_before + 1) << requests.dump();
  EXPECT_EQ(requests.back().value("status", 0), 401) << requests.back().dump();
  EXPECT_LT(seconds, 20) << "retried a refused token";
  EXPECT_TRUE(DepotProjectsOf("dprefused").empty());
}

TEST_F(DepotDeployTest, MachinePendingPastTheDeadlineFailsNamingThePlatform) {
  depot_->Set({{"machine_pending_ms", 600'000}});
  auto d = stack_->Deploy(HelloApp(stack_->dir(), "dppending", "never built"));
  depot_->Set({{"machine_pending_ms", 0}});
  EXPECT_NE(d.exit_code, 0);
  ASSERT_EQ(d.result.value("status", ""), "FAILED") << d.output;
  EXPECT_EQ(d.result.value("failed_step", ""), "build") << d.result.dump();
  const std::string error = d.result.value("error", "");
  EXPECT_NE(error.find("linux/amd64 machine"), std::string::npos) << error;
  EXPECT_NE(error.find("pending for 4s"), std::string::npos) << error;
  EXPECT_NE(error.find("DEPOT_MACHINE_TIMEOUT"), std::string::npos) << error;

  auto projects = DepotProjectsOf("dppending");
  ASSERT_EQ(projects.size(), 1u);
  auto builds = depot_->BuildsOf(projects[0].value("project_id", ""));
  ASSERT_EQ(builds.size(), 1u);
  EXPECT_EQ(builds[0]["outcome"].value("result", ""), "error") << builds[0].dump();
  EXPECT_EQ(builds[0]["machine"].value("state", ""), "pending");
  // The health reports stopped with the build.
  const size_t reports = builds[0]["health"].size();
  std::this_thread::sleep_for(std::chrono::seconds(6));
  EXPECT_EQ(depot_->BuildsOf(projects[0].value("project_id", ""))[0]["health"].size(), reports);
}

TEST_F(DepotDeployTest, CtrlKilledMidBuildAndRestartedEndsReadyWithEveryDepotBuildFinished) {
  fs::path app = HelloApp(stack_->dir(), "dpkill", "survived a kill");
  std::ofstream(app / "Dockerfile", std::ios::app)
      << "RUN sleep 4 && echo slow-step-done " << RunMarker() << "\n";
  const std::string id = DeployAndKillWhenLogged(*stack_, app, "RUN sleep 4");
  ASSERT_FALSE(id.empty());

  auto projects = DepotProjectsOf("dpkill");
  ASSERT_EQ(projects.size(), 1u);
  const std::string depot_project = projects[0].value("project_id", "");
  auto builds = depot_->BuildsOf(depot_project);
  ASSERT_EQ(builds.size(), 1u);
  EXPECT_TRUE(builds[0]["outcome"].is_null()) << "the killed ctrl could not finish it";

  stack_->Start();
  ASSERT_TRUE(stack_->ready()) << stack_->log();
  const std::string status = WaitForFinalStatus(*stack_, id);
  ASSERT_EQ(status, "DEPLOYMENT_STATUS_READY") << GetDeployment(*stack_, id).dump() << "\n"
                                               << stack_->log();
  Http h =
      Get("http://dpkill-production.localhost:" + std::to_string(stack_->gateway_port()) + "/");
  EXPECT_EQ(h.status, 200);
  EXPECT_NE(h.body.find("survived a kill"), std::string::npos) << h.body;

  EXPECT_EQ(DepotProjectsOf("dpkill").size(), 1u) << depot_->State()["projects"].dump();
  builds = depot_->BuildsOf(depot_project);
  ASSERT_EQ(builds.size(), 2u) << Json(builds).dump();
  EXPECT_EQ(builds[0]["outcome"].value("result", ""), "canceled") << builds[0].dump();
  EXPECT_EQ(builds[1]["outcome"].value("result", ""), "success") << builds[1].dump();
}

TEST(DepotBackendSettingsTest, DepotWithoutATokenIsRefusedAtStartSayingWhatToSet) {
  TempDir dir;
  CommandResult r = RunCommand(
      "env -u DEPOT_TOKEN " + SlipwayBinary() +
      " run ctrl --build-backend depot --listen 127.0.0.1:" + std::to_string(FreePort()) +
      " --database " + (dir.path() / "main.db").string() +
      " --s3-endpoint http://127.0.0.1:1 2>&1");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("set DEPOT_TOKEN"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace slipway::testing
