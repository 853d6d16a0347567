// `slipway deploy` ends with the API changes against the environment's live deployment: a second
// deploy whose spec drops a path prints the breaking change, and with --fail-on-breaking it runs
// on its own URL while the environment host keeps serving the first deployment.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "integration/e2e/dev_stack.h"
#include "support/test_support.h"

namespace slipway::testing {
namespace {

class OpenApiDiffE2ETest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { stack_ = new DevStack({"--wait-interval", "250ms"}); }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(stack_->ready()) << stack_->log(); }

  static DevStack* stack_;
};
DevStack* OpenApiDiffE2ETest::stack_ = nullptr;

// The example app, its page saying `greeting`, its spec without the /openapi.yaml path.
fs::path WithoutSpecPath(const fs::path& root, const std::string& name,
                         const std::string& greeting) {
  fs::path dir = HelloApp(root, name, greeting);
  std::ifstream in(dir / "www/openapi.yaml");
  std::string spec((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t cut = spec.find("  /openapi.yaml:");
  EXPECT_NE(cut, std::string::npos) << spec;
  std::ofstream(dir / "www/openapi.yaml") << spec.substr(0, cut);
  return dir;
}

// OpenApiService.GetOpenApiDiff over Connect's JSON protocol, as any client would call it.
nlohmann::json GetOpenApiDiff(DevStack& stack, const std::string& old_id,
                              const std::string& new_id) {
  auto creds = stack.credentials();
  nlohmann::json body = {{"oldDeploymentId", old_id}, {"newDeploymentId", new_id}};
  CommandResult r = RunCommand(
      "curl -s -X POST -H 'Content-Type: application/json' -H "
      "'Authorization: Bearer " +
      creds["token"].get<std::string>() + "' -d '" + body.dump() + "' " +
      creds["control_plane"].get<std::string>() + "/slipway.ctrl.v1.OpenApiService/GetOpenApiDiff");
  return nlohmann::json::parse(r.output, nullptr, false);
}

std::string OwnUrl(const nlohmann::json& result) {
  for (const auto& url : result["urls"]) {
    std::string u = url;
    if (u.find("-production.") == std::string::npos && u.find("-git-") == std::string::npos)
      return u;
  }
  return "";
}

TEST_F(OpenApiDiffE2ETest,
       RemovedPathIsPrintedAsBreakingAndFailOnBreakingKeepsTheOldDeploymentLive) {
  std::string env_url =
      "http://contract-production.localhost:" + std::to_string(stack_->gateway_port()) + "/";
  auto first = stack_->Deploy(HelloApp(stack_->dir(), "contract", "version one"));
  ASSERT_EQ(first.result.value("status", ""), "READY") << first.output;

  // Without the flag: READY, the hosts move, and the output names the breaking change.
  auto second = stack_->Deploy(WithoutSpecPath(stack_->dir() / "v2", "contract", "version two"));
  ASSERT_EQ(second.exit_code, 0) << second.output;
  ASSERT_EQ(second.result.value("status", ""), "READY") << second.output;
  EXPECT_NE(second.output.find("API changes against " + first.result.value("deployment_id", "")),
            std::string::npos)
      << second.output;
  EXPECT_NE(second.output.find("breaking GET /openapi.yaml api-path-removed-without-deprecation"),
            std::string::npos)
      << second.output;
  EXPECT_TRUE(second.result["api_changes"].value("has_breaking_changes", false))
      << second.result.dump();
  EXPECT_NE(Get(env_url).body.find("version two"), std::string::npos);

  // The same diff through the RPC: one path and its operation deleted, the change described.
  nlohmann::json diff = GetOpenApiDiff(*stack_, first.result.value("deployment_id", ""),
                                       second.result.value("deployment_id", ""));
  ASSERT_TRUE(diff.is_object()) << diff.dump();
  EXPECT_EQ(diff.value("hasBreakingChanges", false), true) << diff.dump();
  EXPECT_EQ(diff["summary"]["paths"].value("deleted", 0), 1) << diff.dump();
  EXPECT_EQ(diff["summary"]["operations"].value("deleted", 0), 1) << diff.dump();
  ASSERT_TRUE(diff["changes"].is_array() && !diff["changes"].empty()) << diff.dump();
  EXPECT_EQ(diff["changes"][0].value("kind", ""), "api-path-removed-without-deprecation");
  EXPECT_EQ(diff["changes"][0].value("level", ""), "CHANGE_LEVEL_BREAKING");
  EXPECT_EQ(diff["changes"][0].value("path", ""), "/openapi.yaml");
  EXPECT_EQ(diff["changes"][0].value("method", ""), "GET");

  // Back to the full spec (adding a path is no break), then the break again with the flag.
  auto third = stack_->Deploy(HelloApp(stack_->dir() / "v3", "contract", "version three"));
  ASSERT_EQ(third.result.value("status", ""), "READY") << third.output;
  EXPECT_FALSE(third.result["api_changes"].value("has_breaking_changes", true))
      << third.result.dump();
  EXPECT_NE(Get(env_url).body.find("version three"), std::string::npos);

  auto held = stack_->Deploy(WithoutSpecPath(stack_->dir() / "v4", "contract", "version four"),
                             "--fail-on-breaking");
  EXPECT_NE(held.exit_code, 0) << held.output;
  ASSERT_EQ(held.result.value("status", ""), "READY") << held.output;
  EXPECT_TRUE(held.result["api_changes"].value("held_back", false)) << held.result.dump();
  EXPECT_NE(held.output.find("Not moved to the production hosts"), std::string::npos)
      << held.output;
  // The environment host still serves the third deployment; the held one answers on its own.
  Http env = Get(env_url);
  EXPECT_EQ(env.status, 200);
  EXPECT_NE(env.body.find("version three"), std::string::npos) << env.body;
  std::string own = OwnUrl(held.result);
  ASSERT_FALSE(own.empty()) << held.result.dump();
  EXPECT_NE(Get(own).body.find("version four"), std::string::npos);

  // When the break is intended, promote makes the held deployment live.
  CommandResult promoted =
      RunCommand(SlipwayBinary() + " promote " + held.result.value("deployment_id", "") + " 2>&1",
                 stack_->env());
  ASSERT_EQ(promoted.exit_code, 0) << promoted.output;
  EXPECT_NE(Get(env_url).body.find("version four"), std::string::npos);
}

TEST_F(OpenApiDiffE2ETest, DeploymentWithoutSpecIsComparedWithNothingAndTheRpcSaysWhy) {
  auto with_spec = stack_->Deploy(HelloApp(stack_->dir() / "s1", "nospec", "with a spec"));
  ASSERT_EQ(with_spec.result.value("status", ""), "READY") << with_spec.output;
  fs::path bare = HelloApp(stack_->dir() / "s2", "nospec", "without a spec");
  fs::remove(bare / "www/openapi.yaml");
  auto without = stack_->Deploy(bare, "--fail-on-breaking");
  // Nothing to compare is nothing to hold back: the hosts move.
  ASSERT_EQ(without.exit_code, 0) << without.output;
  EXPECT_NE(without.output.find("API changes: none compared"), std::string::npos) << without.output;
  EXPECT_FALSE(without.result["api_changes"].value("held_back", true)) << without.result.dump();

  nlohmann::json diff = GetOpenApiDiff(*stack_, with_spec.result.value("deployment_id", ""),
                                       without.result.value("deployment_id", ""));
  EXPECT_EQ(diff.value("code", ""), "not_found") << diff.dump();
  EXPECT_NE(diff.value("message", "")
                .find(without.result.value("deployment_id", "") + " has no OpenAPI spec"),
            std::string::npos)
      << diff.dump();
  nlohmann::json unknown =
      GetOpenApiDiff(*stack_, "dep_0000000000000000", without.result.value("deployment_id", ""));
  EXPECT_EQ(unknown.value("code", ""), "not_found") << unknown.dump();
}

}  // namespace
}  // namespace slipway::testing
