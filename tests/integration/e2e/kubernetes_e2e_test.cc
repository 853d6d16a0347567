// `slipway dev --krane-backend kubernetes` against the real test cluster: `slipway deploy` of
// the bundled example reaches READY with its pod Ready on the real kubelet (host networking,
// one replica) and its URL answering through the gateway; an app that exits fails the deploy
// within seconds with its exit code and log, leaving no pod behind.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/kubernetes_cluster.h"
#include "support/test_support.h"

namespace slipway::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string Namespace() {
  static const std::string ns = "ke" + std::to_string(::getpid());
  return ns;
}

class KubernetesE2ETest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    problem_ = new std::string(KubernetesClusterProblem());
    if (!problem_->empty()) return;
    dir_ = new TempDir();
    gateway_port_ = FreePort();
    env_ = new std::map<std::string, std::string>{
        {"XDG_CONFIG_HOME", (dir_->path() / "config").string()},
        {"XDG_DATA_HOME", (dir_->path() / "data").string()}};
    log_ = new std::string((dir_->path() / "dev.log").string());
    // The kubernetes settings through their flags and environment twins alike.
    std::map<std::string, std::string> dev_env = *env_;
    dev_env["KRANE_NAMESPACE"] = Namespace();
    dev_env["KRANE_HOST_NETWORK"] = "true";
    dev_env["REGISTRY"] = "127.0.0.1:5000";  // the kubelet pulls from the local registry
    dev_env["KRANE_TERMINATION_GRACE_SECONDS"] = "1";
    Kubectl("create namespace " + Namespace());
    stack_ = new Process({SlipwayBinary(),    "dev",
                          "--data",           (dir_->path() / "data").string(),
                          "--krane-backend",  "kubernetes",
                          "--kubeconfig",     TestKubeconfig(),
                          "--s3-listen",      "127.0.0.1:" + std::to_string(FreePort()),
                          "--krane-listen",   "127.0.0.1:" + std::to_string(FreePort()),
                          "--listen",         "127.0.0.1:" + std::to_string(FreePort()),
                          "--gateway-listen", "127.0.0.1:" + std::to_string(gateway_port_),
                          "--gateway-admin-listen", "127.0.0.1:0",
                          "--wait-interval",  "250ms",
                          "--wait-deadline",  "60s"},
                         dev_env, *log_);
    if (!WaitForPort(gateway_port_, std::chrono::seconds(60))) {
      *problem_ = "slipway dev did not start:\n" + ReadFile(*log_);
    }
    for (int i = 0; i < 100 && !fs::exists(dir_->path() / "config/slipway/dev.json"); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  static void TearDownTestSuite() {
    if (stack_) {
      stack_->Signal(SIGTERM);
      stack_->Wait(std::chrono::seconds(20));
      delete stack_;
      Kubectl("delete namespace " + Namespace() + " --wait=false");
    }
    delete env_;
    delete log_;
    delete dir_;
    delete problem_;
  }
  void SetUp() override { ASSERT_TRUE(problem_->empty()) << *problem_; }

  struct Deployed {
    int exit_code = -1;
    Json result;
    std::string output;
  };
  static Deployed Deploy(const fs::path& app, const std::string& extra) {
    const std::string err = (dir_->path() / "deploy.err").string();
    CommandResult r = RunCommand(SlipwayBinary() + " deploy " + app.string() +
                                     " --poll-interval 250ms --json " + extra + " 2>" + err,
                                 *env_);
    Deployed d;
    d.exit_code = r.exit_code;
    d.output = ReadFile(err) + r.output + "\n--- dev log:\n" + ReadFile(*log_);
    std::string last;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line[0] == '{') last = line;
    }
    d.result = Json::parse(last, nullptr, false);
    return d;
  }

  static Json Pods(const std::string& deployment_id) {
    return KubectlJson("-n " + Namespace() +
                       " get pods -l slipway.dev/deployment=" + deployment_id);
  }

  static inline std::string* problem_ = nullptr;
  static inline TempDir* dir_ = nullptr;
  static inline std::map<std::string, std::string>* env_ = nullptr;
  static inline std::string* log_ = nullptr;
  static inline Process* stack_ = nullptr;
  static inline int gateway_port_ = 0;
};

TEST_F(KubernetesE2ETest, DeployReachesReadyOnTheRealKubeletAndAnswersThroughTheGateway) {
  auto d = Deploy(SourceDir() / "examples/hello", "--replicas 1 --cpu 200 --memory 64");
  ASSERT_EQ(d.exit_code, 0) << d.output;
  ASSERT_EQ(d.result.value("status", ""), "READY") << d.output;
  const std::string id = d.result.value("deployment_id", "");
  Json pods = Pods(id);
  ASSERT_TRUE(pods.is_object());
  ASSERT_EQ(pods["items"].size(), 1u) << pods.dump();
  const Json& pod = pods["items"][0];
  EXPECT_EQ(pod["spec"]["nodeName"], "127.0.0.1") << "not on the real kubelet";
  bool ready = false;
  for (const Json& c : pod["status"]["conditions"]) {
    if (c["type"] == "Ready") ready = c["status"] == "True";
  }
  EXPECT_TRUE(ready);
  EXPECT_EQ(pod["spec"]["containers"][0]["image"].get<std::string>().rfind("127.0.0.1:5000/", 0),
            0u);
  ASSERT_TRUE(d.result["urls"].is_array() && !d.result["urls"].empty()) << d.result.dump();
  for (const auto& url : d.result["urls"]) {
    CommandResult r = RunCommand("curl -s -m 10 '" + url.get<std::string>() + "'");
    EXPECT_NE(r.output.find("hello from slipway"), std::string::npos) << url << ": " << r.output;
  }
}

TEST_F(KubernetesE2ETest, AnAppThatExitsFailsTheDeployWithItsExitCodeAndLog) {
  fs::path app = dir_->path() / "crasher";
  fs::create_directories(app);
  std::ofstream(app / "Dockerfile") << "FROM slipway/busybox:1\nCMD [\"/bin/sh\", \"-c\", \"echo "
                                       "config file missing >&2; exit 3\"]\n";
  const auto start = std::chrono::steady_clock::now();
  auto d = Deploy(app, "--replicas 1 --cpu 200 --memory 64");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_NE(d.exit_code, 0);
  ASSERT_EQ(d.result.value("status", ""), "FAILED") << d.output;
  EXPECT_EQ(d.result.value("failed_step", ""), "wait") << d.result.dump();
  const std::string error = d.result.value("error", "");
  EXPECT_NE(error.find("exit code 3"), std::string::npos) << error;
  EXPECT_NE(error.find("config file missing"), std::string::npos) << error;
  EXPECT_LT(took, std::chrono::seconds(45)) << "the deadline is 60 s: the crash was not noticed";
  Json pods = Pods(d.result.value("deployment_id", ""));
  ASSERT_TRUE(pods.is_object());
  EXPECT_TRUE(pods["items"].empty()) << "a failed deploy left pods behind: " << pods.dump();
}

}  // namespace
}  // namespace slipway::testing
