// The README's main job as a test: `slipway dev` (the whole embedded stack, real dockerd) and
// `slipway deploy` of the bundled example, ending with its URLs answering through the gateway;
// then the ways a deploy must go when the app is broken.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "support/test_support.h"

namespace slipway::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// One `slipway dev` for the whole suite: starting the stack is the slow part, and every test
// below is a separate project on it, as separate users' projects would be.
class DevStack {
 public:
  DevStack() {
    gateway_port_ = FreePort();
    ctrl_port_ = FreePort();
    env_ = {{"XDG_CONFIG_HOME", (dir_.path() / "config").string()},
            {"XDG_DATA_HOME", (dir_.path() / "data").string()}};
    log_ = (dir_.path() / "dev.log").string();
    process_ = std::make_unique<Process>(
        std::vector<std::string>{SlipwayBinary(), "dev", "--data", (dir_.path() / "data").string(),
                                 "--s3-listen", "127.0.0.1:" + std::to_string(FreePort()),
                                 "--krane-listen", "127.0.0.1:" + std::to_string(FreePort()),
                                 "--listen", "127.0.0.1:" + std::to_string(ctrl_port_),
                                 "--gateway-listen", "127.0.0.1:" + std::to_string(gateway_port_),
                                 "--wait-interval", "250ms", "--wait-deadline", "6s"},
        env_, log_);
    ready_ = WaitForPort(gateway_port_, std::chrono::seconds(60)) &&
             WaitForFile(dir_.path() / "config/slipway/dev.json");
  }
  ~DevStack() {
    process_->Signal(SIGTERM);
    process_->Wait(std::chrono::seconds(20));
    // The apps outlive the stack (as they should in production); the test removes its own.
    for (const std::string& id : deployments_) {
      RunCommand("/usr/bin/docker ps -aq --filter label=slipway.deployment=" + id +
                 " | xargs -r /usr/bin/docker rm -f >/dev/null");
    }
  }

  bool ready() const { return ready_; }
  std::string log() const { return ReadFile(log_); }
  const std::map<std::string, std::string>& env() const { return env_; }
  int gateway_port() const { return gateway_port_; }
  fs::path dir() const { return dir_.path(); }
  nlohmann::json credentials() const {
    return nlohmann::json::parse(ReadFile(dir_.path() / "config/slipway/dev.json"));
  }

  // `slipway deploy DIR --json`: the parsed result and the human output (stderr).
  struct Deployed {
    int exit_code = -1;
    nlohmann::json result;
    std::string output;
    double seconds = 0;
  };
  Deployed Deploy(const fs::path& app, const std::string& extra = "") {
    auto start = Clock::now();
    CommandResult r = RunCommand(SlipwayBinary() + " deploy " + app.string() +
                                     " --poll-interval 250ms --json " + extra +
                                     " 2>" + (dir_.path() / "deploy.err").string(),
                                 env_);
    Deployed d;
    d.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    d.exit_code = r.exit_code;
    d.output = ReadFile(dir_.path() / "deploy.err") + r.output;
    // The JSON result is the last line of stdout.
    std::string last;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line[0] == '{') last = line;
    }
    d.result = nlohmann::json::parse(last, nullptr, false);
    if (d.result.is_object()) deployments_.push_back(d.result.value("deployment_id", ""));
    return d;
  }

 private:
  static bool WaitForFile(const fs::path& path) {
    for (int i = 0; i < 200; ++i) {
      if (fs::exists(path)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  TempDir dir_;
  int gateway_port_ = 0;
  int ctrl_port_ = 0;
  std::map<std::string, std::string> env_;
  std::string log_;
  std::unique_ptr<Process> process_;
  bool ready_ = false;
  std::vector<std::string> deployments_;
};

struct Http {
  int status = 0;
  std::string body;
};

// GET through curl, as a user would: *.localhost resolves to loopback in curl itself.
Http Get(const std::string& url) {
  CommandResult r = RunCommand("curl -s -m 10 -w '\\n%{http_code}' '" + url + "'");
  Http h;
  size_t nl = r.output.rfind('\n');
  if (nl == std::string::npos) return h;
  h.body = r.output.substr(0, nl);
  h.status = std::atoi(r.output.c_str() + nl + 1);
  return h;
}

// ctrl's own view of a deployment (Connect JSON), for what the CLI does not print.
nlohmann::json GetDeployment(const DevStack& stack, const std::string& id) {
  auto creds = stack.credentials();
  CommandResult r = RunCommand(
      "curl -s -X POST -H 'Content-Type: application/json' -H 'Authorization: Bearer " +
      creds["token"].get<std::string>() + "' -d '{\"deploymentId\":\"" + id + "\"}' " +
      creds["control_plane"].get<std::string>() +
      "/slipway.ctrl.v1.DeploymentService/GetDeployment");
  return nlohmann::json::parse(r.output, nullptr, false);
}

// How long a step of the deployment took, in milliseconds (-1 when it has no times).
int64_t StepMillis(const nlohmann::json& deployment, const std::string& step) {
  for (const auto& s : deployment["deployment"]["steps"]) {
    if (s.value("name", "") != step) continue;
    // int64 fields arrive as JSON strings in the Connect/protobuf JSON mapping.
    auto ms = [&](const char* k) {
      const auto& v = s[k];
      return v.is_string() ? std::stoll(v.get<std::string>()) : v.get<int64_t>();
    };
    if (!s.contains("startedAtMs") || !s.contains("finishedAtMs")) return -1;
    return ms("finishedAtMs") - ms("startedAtMs");
  }
  return -1;
}

int ContainersOf(const std::string& deployment_id) {
  CommandResult r = RunCommand(
      "/usr/bin/docker ps -aq --filter label=slipway.deployment=" + deployment_id + " | wc -l");
  return std::atoi(r.output.c_str());
}

// A copy of examples/hello under `name`, its page saying `greeting`.
fs::path HelloApp(const fs::path& root, const std::string& name, const std::string& greeting) {
  fs::path dir = root / name;
  fs::remove_all(dir);
  fs::create_directories(root);
  fs::copy(SourceDir() / "examples/hello", dir, fs::copy_options::recursive);
  std::ofstream(dir / "www/index.html") << "<p>" << greeting << "</p>\n";
  fs::remove(dir / "slipway.toml");
  return dir;
}

// An app whose Dockerfile runs `command` on the example's base image.
fs::path BrokenApp(const fs::path& root, const std::string& name, const std::string& command) {
  fs::path dir = root / name;
  fs::create_directories(dir);
  std::ofstream(dir / "Dockerfile") << "FROM slipway/busybox:1\nCMD [\"/bin/sh\", \"-c\", \""
                                    << command << "\"]\n";
  return dir;
}

class DeployE2ETest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { stack_ = new DevStack(); }
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
  EXPECT_GE(wait_ms, 6000) << "failed before the deadline";
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
               "127.0.0.1:" + std::to_string(krane), "--s3-listen", "127.0.0.1:" + std::to_string(s3)},
              {{"XDG_CONFIG_HOME", (dir.path() / "config").string()}},
              (dir.path() / "dev.log").string());
  for (int port : {s3, krane, ctrl, gateway}) {
    ASSERT_TRUE(WaitForPort(port, std::chrono::seconds(30))) << ReadFile(dir.path() / "dev.log");
  }
  auto creds = nlohmann::json::parse(ReadFile(dir.path() / "config/slipway/dev.json"));
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
