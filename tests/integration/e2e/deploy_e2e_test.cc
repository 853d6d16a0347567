// The README's main job as a test: `slipway dev` (the whole embedded stack, real dockerd) and
// `slipway deploy` of the bundled example, ending with its URLs answering through the gateway;
// then the ways a deploy must go when the app is broken.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <thread>

#include "integration/e2e/dev_stack.h"
#include "support/test_support.h"

namespace slipway::testing {
namespace {

class DeployE2ETest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { stack_ = new DevStack({"--wait-interval", "250ms", "--wait-deadline", "6s"}); }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(stack_->ready()) << stack_->log(); }

  static DevStack* stack_;
};
DevStack* DeployE2ETest::stack_ = nullptr;

TEST_F(DeployE2ETest, BundledExampleAnswersThroughTheGatewayAndItsSpecIsStored) {
  auto d = stack_->Deploy(SourceDir() / "examples/hello");
  ASSERT_EQ(d.exit_code, 0) << d.output;
  ASSERT_EQ(d.result.value("status", ""), "READY") << d.output;
  ASSERT_TRUE(d.result["urls"].is_array() && !d.result["urls"].empty()) << d.result.dump();
  for (const auto& url : d.result["urls"]) {
    EXPECT_NE(url.get<std::string>().find(":" + std::to_string(stack_->gateway_port())),
              std::string::npos);
    Http h = Get(url.get<std::string>());
    EXPECT_EQ(h.status, 200) << url;
    EXPECT_NE(h.body.find("hello from slipway"), std::string::npos) << url << ": " << h.body;
  }
  // The human output named the steps as they went.
  EXPECT_NE(d.output.find("build"), std::string::npos) << d.output;
  EXPECT_NE(d.output.find("route"), std::string::npos) << d.output;

  // The example's OpenAPI document was scraped and is served back by ctrl.
  auto creds = stack_->credentials();
  std::string id = d.result["deployment_id"];
  CommandResult spec = RunCommand(
      "curl -s -X POST -H 'Content-Type: application/json' -H 'Authorization: Bearer " +
      creds["token"].get<std::string>() + "' -d '{\"deploymentId\":\"" + id + "\"}' " +
      creds["control_plane"].get<std::string>() +
      "/slipway.ctrl.v1.DeploymentService/GetOpenApiSpec");
  auto j = nlohmann::json::parse(spec.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << spec.output;
  EXPECT_NE(j.value("spec", "").find("title: hello"), std::string::npos) << spec.output;

  // An unknown host is the gateway's 404, not some app's page.
  Http unknown = Get("http://nobody-here.localhost:" + std::to_string(stack_->gateway_port()) + "/");
  EXPECT_EQ(unknown.status, 404);
}

TEST_F(DeployE2ETest, SecondDeployMovesEnvironmentAndBranchHostsButKeepsTheFirstsOwnHost) {
  fs::path v1 = HelloApp(stack_->dir(), "greeter", "version one");
  auto first = stack_->Deploy(v1, "--branch feature/Greeting");
  ASSERT_EQ(first.result.value("status", ""), "READY") << first.output;
  fs::path v2 = HelloApp(stack_->dir() / "v2", "greeter", "version two");
  auto second = stack_->Deploy(v2, "--branch feature/Greeting");
  ASSERT_EQ(second.result.value("status", ""), "READY") << second.output;

  std::string port = std::to_string(stack_->gateway_port());
  std::string env_url = "http://greeter-production.localhost:" + port + "/";
  std::string branch_url = "http://greeter-git-feature-greeting.localhost:" + port + "/";
  for (const std::string& url : {env_url, branch_url}) {
    Http h = Get(url);
    EXPECT_NE(h.body.find("version two"), std::string::npos) << url << " answered " << h.status
                                                             << ": " << h.body;
  }

  // The first deployment's own URL (the one naming its id) still reaches the first build.
  std::string own_first;
  for (const auto& url : first.result["urls"]) {
    std::string u = url;
    if (u.find("-production.") == std::string::npos && u.find("-git-") == std::string::npos) {
      own_first = u;
    }
  }
  ASSERT_FALSE(own_first.empty()) << first.result.dump();
  Http h = Get(own_first);
  EXPECT_EQ(h.status, 200);
  EXPECT_NE(h.body.find("version one"), std::string::npos) << h.body;
}

TEST_F(DeployE2ETest, AppThatExitsAtStartFailsWithinSecondsWithItsExitCodeAndLog) {
  fs::path app = BrokenApp(stack_->dir(), "crasher", "echo config file missing >&2; exit 3");
  auto d = stack_->Deploy(app);
  EXPECT_NE(d.exit_code, 0);
  ASSERT_EQ(d.result.value("status", ""), "FAILED") << d.output;
  EXPECT_EQ(d.result.value("failed_step", ""), "wait") << d.result.dump();
  std::string error = d.result.value("error", "");
  EXPECT_NE(error.find("3"), std::string::npos) << error;
  EXPECT_NE(error.find("config file missing"), std::string::npos) << error;
  // Failed at once, not at the 6 s deadline.
  std::string id = d.result.value("deployment_id", "");
  int64_t wait_ms = StepMillis(GetDeployment(*stack_, id), "wait");
  EXPECT_GE(wait_ms, 0);
  EXPECT_LT(wait_ms, 4000) << "the crash was noticed only after " << wait_ms << " ms";
  EXPECT_EQ(ContainersOf(id), 0) << "a failed deploy left containers behind";
  EXPECT_NE(d.output.find("wait"), std::string::npos) << d.output;
}

TEST_F(DeployE2ETest, AppThatNeverListensFailsAtTheDeadlineNamingTheInstance) {
  fs::path app = BrokenApp(stack_->dir(), "sleeper", "exec sleep 3600");
  auto d = stack_->Deploy(app);
  EXPECT_NE(d.exit_code, 0);
  ASSERT_EQ(d.result.value("status", ""), "FAILED") << d.output;
  EXPECT_EQ(d.result.value("failed_step", ""), "wait") << d.result.dump();
  std::string id = d.result.value("deployment_id", "");
  std::string error = d.result.value("error", "");
  EXPECT_NE(error.find(id), std::string::npos) << "the error should name the instance: " << error;
  int64_t wait_ms = StepMillis(GetDeployment(*stack_, id), "wait");
  // The deadline is journaled by its own clock read, a millisecond apart at most from the one
  // that stamps the step's start: a step ending at the deadline may show 5,999 ms.
  EXPECT_GE(wait_ms, 5999) << "failed before the deadline";
  EXPECT_LT(wait_ms, 20000) << "the deadline was not kept";
  EXPECT_EQ(ContainersOf(id), 0) << "a failed deploy left containers behind";
}

// `slipway dev` on its own: Ctrl-C stops every part and exits 0; without dockerd it refuses to
// start and says what to do.
TEST(DevCommandTest, CtrlCStopsEveryPartAndExitsCleanly) {
  TempDir dir;
  int ctrl = FreePort(), gateway = FreePort(), krane = FreePort(), s3 = FreePort();
  Process dev({SlipwayBinary(), "dev", "--data", (dir.path() / "data").string(), "--listen",
               "127.0.0.1:" + std::to_string(ctrl), "--gateway-listen",
               "127.0.0.1:" + std::to_string(gateway), "--krane-listen",
               "127.0.0.1:" + std::to_string(krane), "--s3-listen", "127.0.0.1:" + std::to_string(s3),
               "--gateway-admin-listen", "127.0.0.1:0"},
              {{"XDG_CONFIG_HOME", (dir.path() / "config").string()}},
              (dir.path() / "dev.log").string());
  for (int port : {s3, krane, ctrl, gateway}) {
    ASSERT_TRUE(WaitForPort(port, std::chrono::seconds(30))) << ReadFile(dir.path() / "dev.log");
  }
  // The ports may open a moment before the credentials file is written.
  const fs::path creds_file = dir.path() / "config/slipway/dev.json";
  nlohmann::json creds;
  for (int i = 0; i < 100 && !creds.is_object(); ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (fs::exists(creds_file)) creds = nlohmann::json::parse(ReadFile(creds_file), nullptr, false);
  }
  ASSERT_TRUE(creds.is_object()) << ReadFile(dir.path() / "dev.log");
  EXPECT_EQ(creds.value("control_plane", ""), "http://127.0.0.1:" + std::to_string(ctrl));
  EXPECT_FALSE(creds.value("token", "").empty());
  EXPECT_EQ(fs::status(dir.path() / "config/slipway/dev.json").permissions() &
                (fs::perms::group_all | fs::perms::others_all),
            fs::perms::none)
      << "the token file must be private";

  dev.Signal(SIGINT);
  EXPECT_EQ(dev.Wait(std::chrono::seconds(20)), 0) << ReadFile(dir.path() / "dev.log");
  for (int port : {s3, krane, ctrl, gateway}) {
    EXPECT_FALSE(WaitForPort(port, std::chrono::milliseconds(200))) << "port " << port << " still open";
  }
}

TEST(DevCommandTest, WithoutDockerdItRefusesToStartAndSaysWhatToDo) {
  TempDir dir;
  CommandResult r = RunCommand(SlipwayBinary() + " dev --data " + (dir.path() / "data").string() +
                                   " --docker-host unix://" + (dir.path() / "no-docker.sock").string() +
                                   " --listen 127.0.0.1:" + std::to_string(FreePort()) +
                                   " --gateway-listen 127.0.0.1:" + std::to_string(FreePort()),
                               {{"XDG_CONFIG_HOME", (dir.path() / "config").string()}});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("dockerd does not answer"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("start it"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.path() / "config/slipway/dev.json"));
}

}  // namespace
}  // namespace slipway::testing

namespace slipway::testing {
namespace {

TEST_F(DeployE2ETest, RollbackPromoteAndDeleteThroughTheCli) {
  fs::path v1 = HelloApp(stack_->dir(), "flipper", "flip one");
  auto first = stack_->Deploy(v1);
  ASSERT_EQ(first.result.value("status", ""), "READY") << first.output;
  fs::path v2 = HelloApp(stack_->dir() / "v2", "flipper", "flip two");
  auto second = stack_->Deploy(v2);
  ASSERT_EQ(second.result.value("status", ""), "READY") << second.output;
  const std::string url = "http://flipper-production.localhost:" + std::to_string(stack_->gateway_port()) + "/";
  EXPECT_NE(Get(url).body.find("flip two"), std::string::npos);

  CommandResult list = RunCommand(SlipwayBinary() + " list --project flipper 2>&1", stack_->env());
  EXPECT_NE(list.output.find("LIVE: production"), std::string::npos) << list.output;

  CommandResult rollback =
      RunCommand(SlipwayBinary() + " rollback " + v1.string() + " --json 2>&1", stack_->env());
  EXPECT_EQ(rollback.exit_code, 0) << rollback.output;
  EXPECT_NE(rollback.output.find(first.result.value("deployment_id", "")), std::string::npos)
      << rollback.output;
  EXPECT_NE(Get(url).body.find("flip one"), std::string::npos) << "the URL serves the first again";

  const std::string second_id = second.result.value("deployment_id", "");
  CommandResult promote = RunCommand(SlipwayBinary() + " promote " + second_id + " 2>&1", stack_->env());
  EXPECT_EQ(promote.exit_code, 0) << promote.output;
  EXPECT_NE(Get(url).body.find("flip two"), std::string::npos);

  CommandResult refused = RunCommand(SlipwayBinary() + " delete " + second_id + " 2>&1", stack_->env());
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("--force"), std::string::npos) << refused.output;
  CommandResult deleted = RunCommand(
      SlipwayBinary() + " delete " + first.result.value("deployment_id", "") + " 2>&1", stack_->env());
  EXPECT_EQ(deleted.exit_code, 0) << deleted.output;
  EXPECT_EQ(ContainersOf(first.result.value("deployment_id", "")), 0);
}

}  // namespace
}  // namespace slipway::testing

namespace slipway::testing {
namespace {

TEST_F(DeployE2ETest, LogsShowWhatTheAppPrintsAndFollowShowsLinesPrintedLater) {
  fs::path app = stack_->dir() / "ticker";
  fs::create_directories(app / "www");
  std::ofstream(app / "www" / "index.html") << "tick tock\n";
  std::ofstream(app / "Dockerfile")
      << "FROM slipway/busybox:1\nCOPY www /www\n"
         "CMD [\"/bin/sh\", \"-c\", \"echo started on $PORT; "
         "(i=0; while true; do i=$((i+1)); echo tick $i; echo oops $i >&2; sleep 0.3; done) & "
         "exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www\"]\n";
  auto d = stack_->Deploy(app);
  ASSERT_EQ(d.result.value("status", ""), "READY") << d.output;
  const std::string id = d.result.value("deployment_id", "");

  CommandResult once = RunCommand(SlipwayBinary() + " logs " + id + " 2>&1", stack_->env());
  EXPECT_EQ(once.exit_code, 0) << once.output;
  EXPECT_NE(once.output.find(id + "-0 | started on"), std::string::npos) << once.output;
  EXPECT_NE(once.output.find("oops 1"), std::string::npos) << "stderr too\n" << once.output;

  // --follow: a line the app prints only after the command started reaches it.
  const fs::path out = stack_->dir() / "follow.log";
  Process follow({SlipwayBinary(), "logs", id, "--follow", "--since", "1s"}, stack_->env(), out.string());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CommandResult now = RunCommand(SlipwayBinary() + " logs " + id + " --tail 4 2>&1", stack_->env());
  int latest = 0;
  if (size_t p = now.output.rfind("tick "); p != std::string::npos) latest = std::atoi(now.output.c_str() + p + 5);
  ASSERT_GT(latest, 0) << now.output;
  const std::string later = "tick " + std::to_string(latest + 3);
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    seen = ReadFile(out).find(later) != std::string::npos;
  }
  follow.Signal(SIGINT);
  EXPECT_EQ(follow.Wait(std::chrono::seconds(10)), 0) << "Ctrl-C ends --follow cleanly";
  EXPECT_TRUE(seen) << "--follow never showed \"" << later << "\":\n" << ReadFile(out);

  CommandResult bad = RunCommand(SlipwayBinary() + " logs dep_0000000000000000 2>&1", stack_->env());
  EXPECT_NE(bad.exit_code, 0);
}

}  // namespace
}  // namespace slipway::testing

namespace slipway::testing {
namespace {

TEST_F(DeployE2ETest, UnchangedSourceIsDeployedWithoutABuildAndAnyChangedInputBuildsAgain) {
  fs::path app = HelloApp(stack_->dir(), "sameold", "the same");
  auto first = stack_->Deploy(app);
  ASSERT_EQ(first.result.value("status", ""), "READY") << first.output;
  EXPECT_EQ(first.output.find("unchanged:"), std::string::npos) << first.output;

  auto again = stack_->Deploy(app);
  ASSERT_EQ(again.result.value("status", ""), "READY") << again.output;
  EXPECT_NE(again.output.find("unchanged: the source and build settings are those of build " +
                              first.result.value("build_id", "")),
            std::string::npos)
      << again.output;
  EXPECT_EQ(again.result.value("image", ""), first.result.value("image", ""));

  auto with_arg = stack_->Deploy(app, "--build-arg FLAVOUR=2");
  ASSERT_EQ(with_arg.result.value("status", ""), "READY") << with_arg.output;
  EXPECT_EQ(with_arg.output.find("unchanged:"), std::string::npos) << "a build arg changed";
  EXPECT_NE(with_arg.result.value("image", ""), first.result.value("image", ""));

  std::ofstream(app / "Dockerfile", std::ios::app) << "LABEL changed=yes\n";
  auto changed = stack_->Deploy(app);
  EXPECT_EQ(changed.output.find("unchanged:"), std::string::npos) << "the Dockerfile changed";

  auto forced = stack_->Deploy(app, "--no-cache");
  ASSERT_EQ(forced.result.value("status", ""), "READY") << forced.output;
  EXPECT_EQ(forced.output.find("unchanged:"), std::string::npos) << "--no-cache builds";
}

}  // namespace
}  // namespace slipway::testing
