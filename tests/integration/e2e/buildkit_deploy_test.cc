// `slipway dev --build-backend buildkit` against the real buildkitd and registry, end to end
// through the CLI: the bundled example deploys and answers through the gateway running the image
// pinned by digest; a two-platform deploy runs the amd64 manifest of its index; a failing RUN is
// shown in `slipway deploy` with its output and step, exit non-zero; ctrl SIGKILLed mid-build
// and started again still ends the deployment READY.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "integration/e2e/dev_stack.h"
#include "support/buildkit_peer.h"
#include "support/test_support.h"

namespace slipway::testing {
namespace {

using Json = nlohmann::json;

Json RegistryManifest(const std::string& repository, const std::string& reference) {
  CommandResult r = RunCommand(
      "curl -s -H 'Accept: application/vnd.oci.image.index.v1+json, "
      "application/vnd.docker.distribution.manifest.list.v2+json, "
      "application/vnd.oci.image.manifest.v1+json, "
      "application/vnd.docker.distribution.manifest.v2+json' "
      "http://127.0.0.1:5000/v2/" + repository + "/manifests/" + reference);
  return Json::parse(r.output, nullptr, false);
}

class BuildkitDeployTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!BuildkitProblem().empty()) return;
    stack_ = new DevStack({"--build-backend", "buildkit", "--buildkit-host", Buildkit().host,
                           "--registry", "127.0.0.1:5000", "--buildkit-cache-repository",
                           "slipway-test-cache", "--wait-interval", "250ms"});
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void SetUp() override {
    std::string problem = BuildkitProblem();
    ASSERT_TRUE(problem.empty()) << problem;
    ASSERT_TRUE(stack_ != nullptr && stack_->ready()) << (stack_ ? stack_->log() : "");
  }

  static DevStack* stack_;
};
DevStack* BuildkitDeployTest::stack_ = nullptr;

TEST_F(BuildkitDeployTest, ExampleDeploysAnswersAndRunsTheImagePinnedByDigest) {
  fs::path app = HelloApp(stack_->dir(), "bkhello", "built by buildkit");
  auto d = stack_->Deploy(app);
  ASSERT_EQ(d.exit_code, 0) << d.output << "\n" << stack_->log();
  ExpectReadyAndAnswering(d, "built by buildkit");
  if (HasFatalFailure()) return;
  // The build log went through the CLI as the docker backend's does.
  EXPECT_NE(d.output.find("COPY www /www"), std::string::npos) << d.output;

  auto containers = InspectContainersOf(d.result.value("deployment_id", ""));
  ASSERT_FALSE(containers.empty());
  for (const Json& c : containers) {
    std::string image = c["Config"].value("Image", "");
    EXPECT_EQ(image.rfind("127.0.0.1:5000/bkhello:", 0), 0u) << image;
    EXPECT_NE(image.find("@sha256:"), std::string::npos) << "not pinned by digest: " << image;
  }
}

TEST_F(BuildkitDeployTest, TwoPlatformDeployRunsTheAmd64ManifestOfItsIndex) {
  fs::path app = HelloApp(stack_->dir(), "bkmulti", "two platforms");
  auto single = stack_->Deploy(app, "--platform linux/amd64");
  ASSERT_EQ(single.exit_code, 0) << single.output << "\n" << stack_->log();
  auto d = stack_->Deploy(app, "--platform linux/amd64,linux/arm64");
  ASSERT_EQ(d.exit_code, 0) << d.output << "\n" << stack_->log();
  EXPECT_EQ(d.output.find("unchanged:"), std::string::npos)
      << "other platforms are other build inputs: built again\n" << d.output;
  auto containers = InspectContainersOf(d.result.value("deployment_id", ""));
  ASSERT_FALSE(containers.empty());
  std::string image = containers[0]["Config"].value("Image", "");
  size_t at = image.find('@');
  ASSERT_NE(at, std::string::npos) << image;
  Json index = RegistryManifest("bkmulti", image.substr(at + 1));
  ASSERT_TRUE(index["manifests"].is_array()) << index.dump();
  std::string amd64_config, arm64_manifest;
  for (const Json& m : index["manifests"]) {
    const Json& p = m["platform"];
    if (p.value("architecture", "") == "amd64") {
      amd64_config = RegistryManifest("bkmulti", m.value("digest", ""))["config"].value("digest", "");
    }
    if (p.value("architecture", "") == "arm64") arm64_manifest = m.value("digest", "");
  }
  ASSERT_FALSE(amd64_config.empty()) << index.dump();
  EXPECT_FALSE(arm64_manifest.empty()) << index.dump();
  // Every container's image id is the amd64 manifest's config digest: dockerd picked amd64.
  for (const Json& c : containers) {
    EXPECT_EQ(c["Config"].value("Image", ""), image) << "all instances run the same pinned index";
    EXPECT_EQ(c.value("Image", ""), amd64_config);
  }
}

TEST_F(BuildkitDeployTest, FailingRunShowsItsOutputAndStepAndExitsNonZero) {
  fs::path dir = stack_->dir() / "bkbroken";
  fs::create_directories(dir);
  std::ofstream(dir / "Dockerfile") << "FROM slipway/busybox:1\n"
                                       "RUN echo resolving deps && echo missing-module-xyz >&2 && exit 7\n";
  auto d = stack_->Deploy(dir);
  EXPECT_NE(d.exit_code, 0);
  ASSERT_EQ(d.result.value("status", ""), "FAILED") << d.output;
  EXPECT_EQ(d.result.value("failed_step", ""), "build") << d.result.dump();
  std::string error = d.result.value("error", "");
  EXPECT_NE(error.find("RUN echo resolving deps"), std::string::npos) << error;
  EXPECT_NE(error.find("exit code: 7"), std::string::npos) << error;
  EXPECT_NE(error.find("missing-module-xyz"), std::string::npos) << error;
  EXPECT_NE(d.output.find("missing-module-xyz"), std::string::npos) << d.output;
}

TEST_F(BuildkitDeployTest, CtrlKilledMidBuildAndRestartedEndsReady) {
  fs::path app = HelloApp(stack_->dir(), "bkkill", "survived a kill");
  // A build long enough to be killed in the middle of, its step new to the daemon's cache.
  std::ofstream(app / "Dockerfile", std::ios::app)
      << "RUN sleep 4 && echo slow-step-done "
      << std::chrono::system_clock::now().time_since_epoch().count() << "\n";
  const std::string id = DeployAndKillWhenLogged(*stack_, app, "RUN sleep 4");
  ASSERT_FALSE(id.empty());

  stack_->Start();
  ASSERT_TRUE(stack_->ready()) << stack_->log();
  const std::string status = WaitForFinalStatus(*stack_, id);
  ASSERT_EQ(status, "DEPLOYMENT_STATUS_READY") << GetDeployment(*stack_, id).dump() << "\n"
                                              << stack_->log();
  Http h = Get("http://bkkill-production.localhost:" + std::to_string(stack_->gateway_port()) + "/");
  EXPECT_EQ(h.status, 200);
  EXPECT_NE(h.body.find("survived a kill"), std::string::npos) << h.body;
}

}  // namespace
}  // namespace slipway::testing
