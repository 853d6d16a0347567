// `slipway run krane` with the docker backend against the real dockerd: containers per
// replica that answer HTTP, idempotent Create, FAILED with exit code and log for an app that
// exits, PENDING for one that never listens, OOM kills, limits, Delete, and the token.
//
// Images are FROM scratch with Debian's static busybox, built once per suite. Every container
// krane creates here carries slipway.namespace=<this run's namespace> and is removed after each
// test, pass or fail.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "net/connect.h"
#include "net/http.h"
#include "net/http_client.h"
#include "slipway/krane/v1/deployment.pb.h"
#include "support/docker_api.h"
#include "support/test_support.h"

namespace slipway::krane {
namespace {

namespace v1 = slipway::krane::v1;
using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kToken = "krane-integration-token";
constexpr const char* kService = "slipway.krane.v1.DeploymentService";
constexpr const char* kHelloImage = "slipway-test/krane-hello:1";
constexpr const char* kCrashImage = "slipway-test/krane-crash:1";
constexpr const char* kSleepImage = "slipway-test/krane-sleep:1";
constexpr const char* kHogImage = "slipway-test/krane-hog:1";
constexpr const char* kIndexHtml = "hello from krane's test image\n";

// This run's namespace and deployment id prefix: runs never see each other's containers.
std::string RunId() {
  static const std::string id = "kit" + std::to_string(::getpid());
  return id;
}

// Calls dockerd's API directly, to check what krane did behind its own API.
Result<Json> Docker(const std::string& method, const std::string& path) {
  return slipway::testing::DockerApi(method, path);
}

// The containers carrying label=value, as GET /containers/json lists them.
std::vector<Json> ContainersWithLabel(const std::string& label_equals_value) {
  Json filters = {{"label", Json::array({label_equals_value})}};
  auto list = Docker("GET", "/containers/json?all=1&filters=" + net::UriEncode(filters.dump()));
  EXPECT_TRUE(list.ok()) << list.status().ToString();
  std::vector<Json> out;
  if (list.ok() && list->is_array()) {
    for (const Json& c : *list) out.push_back(c);
  }
  return out;
}

void RemoveContainersWithLabel(const std::string& label_equals_value) {
  for (const Json& c : ContainersWithLabel(label_equals_value)) {
    auto removed = Docker("DELETE", "/containers/" + c["Id"].get<std::string>() + "?force=1&v=1");
    EXPECT_TRUE(removed.ok()) << removed.status().ToString();
  }
}

void BuildImage(const std::filesystem::path& context, const std::string& dockerfile,
                const std::string& tag) {
  std::ofstream(context / "Dockerfile") << dockerfile;
  auto result = testing::RunCommand("tar -C '" + context.string() +
                                    "' -c . | /usr/bin/docker build -q --no-cache -t " + tag + " -");
  ASSERT_EQ(result.exit_code, 0) << "building " << tag << ": " << result.output;
}

class KraneDockerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto ping = Docker("GET", "/_ping");
    ASSERT_TRUE(ping.ok()) << "dockerd does not answer on /var/run/docker.sock ("
                           << ping.status().ToString() << "); start it with scripts/services.sh";

    context_dir_ = new testing::TempDir();
    const auto& dir = context_dir_->path();
    std::filesystem::copy_file("/bin/busybox", dir / "busybox");
    std::filesystem::create_directories(dir / "www");
    std::ofstream(dir / "www" / "index.html") << kIndexHtml;
    const std::string base = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n";
    // Exec form does not expand $PORT: the shell does, then execs httpd in its place.
    BuildImage(
        dir,
        base +
            R"(CMD ["/bin/busybox","sh","-c","exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www"])",
        kHelloImage);
    BuildImage(dir,
               base + R"(CMD ["/bin/busybox","sh","-c","echo starting; echo boom >&2; exit 3"])",
               kCrashImage);
    BuildImage(dir, base + R"(CMD ["/bin/busybox","sleep","3600"])", kSleepImage);
    // Holds 200 MB in a shell variable: far above the limit the test sets.
    BuildImage(
        dir,
        base +
            R"(CMD ["/bin/busybox","sh","-c","echo allocating; x=$(/bin/busybox head -c 200000000 /dev/zero | /bin/busybox tr '\\0' a); echo survived"])",
        kHogImage);

    port_ = testing::FreePort();
    log_file_ = new std::string((dir / "krane.log").string());
    // The token through its environment twin, the address through the flag.
    krane_ =
        new testing::Process({testing::SlipwayBinary(), "run", "krane", "--listen",
                              "127.0.0.1:" + std::to_string(port_)},
                             {{"KRANE_TOKEN", kToken}, {"KRANE_BACKEND", "docker"}}, *log_file_);
    ASSERT_TRUE(testing::WaitForPort(port_)) << "krane did not start:\n"
                                             << testing::ReadFile(*log_file_);
  }

  static void TearDownTestSuite() {
    RemoveContainersWithLabel("slipway.namespace=" + RunId());
    if (krane_ != nullptr) {
      krane_->Signal(SIGTERM);
      EXPECT_EQ(krane_->Wait(15s), 0) << "krane did not stop cleanly on SIGTERM";
      delete krane_;
      krane_ = nullptr;
    }
    delete log_file_;
    delete context_dir_;
  }

  void TearDown() override {
    RemoveContainersWithLabel("slipway.namespace=" + RunId());
    if (HasFailure() && log_file_ != nullptr) {
      std::cerr << "krane log:\n" << testing::ReadFile(*log_file_) << "\n";
    }
  }

  static net::ConnectClient Client(std::string token = kToken) {
    net::ConnectClient::Options o;
    o.base_url = "http://127.0.0.1:" + std::to_string(port_);
    o.bearer_token = std::move(token);
    o.timeout = 60s;
    return net::ConnectClient(o);
  }

  static std::string DeploymentId(const std::string& name) { return RunId() + "-" + name; }

  static v1::CreateDeploymentRequest CreateRequest(const std::string& name,
                                                   const std::string& image, int replicas) {
    v1::CreateDeploymentRequest req;
    req.set_namespace_(RunId());
    req.set_deployment_id(DeploymentId(name));
    req.set_image(image);
    req.set_replicas(replicas);
    req.set_memory_mib(64);
    req.set_cpu_millicores(250);
    return req;
  }

  static Result<v1::CreateDeploymentResponse> Create(const v1::CreateDeploymentRequest& req,
                                                     const std::string& token = kToken) {
    return Client(token).Call<v1::CreateDeploymentResponse>(
        net::ConnectProcedure(kService, "CreateDeployment"), req);
  }

  static Result<v1::GetDeploymentResponse> Get(const std::string& name) {
    v1::GetDeploymentRequest req;
    req.set_namespace_(RunId());
    req.set_deployment_id(DeploymentId(name));
    return Client().Call<v1::GetDeploymentResponse>(
        net::ConnectProcedure(kService, "GetDeployment"), req);
  }

  static Result<v1::DeleteDeploymentResponse> Delete(const std::string& name) {
    v1::DeleteDeploymentRequest req;
    req.set_namespace_(RunId());
    req.set_deployment_id(DeploymentId(name));
    return Client().Call<v1::DeleteDeploymentResponse>(
        net::ConnectProcedure(kService, "DeleteDeployment"), req);
  }

  // Polls GetDeployment until every instance satisfies done, or the timeout; returns the last
  // answer either way.
  static v1::GetDeploymentResponse WaitFor(const std::string& name,
                                           std::chrono::milliseconds timeout,
                                           const std::function<bool(const v1::Instance&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    v1::GetDeploymentResponse last;
    while (true) {
      auto got = Get(name);
      EXPECT_TRUE(got.ok()) << got.status().ToString();
      if (got.ok()) {
        last = *got;
        bool all = last.instances_size() > 0;
        for (const auto& in : last.instances()) all = all && done(in);
        if (all) return last;
      }
      if (std::chrono::steady_clock::now() >= deadline) return last;
      std::this_thread::sleep_for(100ms);
    }
  }

  static std::vector<Json> ContainersOf(const std::string& name) {
    return ContainersWithLabel("slipway.deployment=" + DeploymentId(name));
  }

  static inline testing::TempDir* context_dir_ = nullptr;
  static inline testing::Process* krane_ = nullptr;
  static inline std::string* log_file_ = nullptr;
  static inline int port_ = 0;
};

bool IsRunning(const v1::Instance& in) { return in.status() == v1::INSTANCE_STATUS_RUNNING; }
bool IsFailed(const v1::Instance& in) { return in.status() == v1::INSTANCE_STATUS_FAILED; }

TEST_F(KraneDockerTest, ReplicasBecomeRunningAndAnswerHttpAtTheirAddresses) {
  const auto start = std::chrono::steady_clock::now();
  auto created = Create(CreateRequest("hello", kHelloImage, 2));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ASSERT_EQ(created->instances_size(), 2);

  v1::GetDeploymentResponse got = WaitFor("hello", 15s, IsRunning);
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  ASSERT_EQ(got.instances_size(), 2) << got.DebugString();
  for (const auto& in : got.instances()) ASSERT_TRUE(IsRunning(in)) << got.DebugString();
  std::cout << "2 replicas RUNNING after " << elapsed.count() << " ms\n";

  EXPECT_EQ(got.instances(0).id(), DeploymentId("hello") + "-0");
  EXPECT_EQ(got.instances(1).id(), DeploymentId("hello") + "-1");
  EXPECT_NE(got.instances(0).address(), got.instances(1).address());
  net::HttpClient http;
  for (const auto& in : got.instances()) {
    EXPECT_EQ(in.address().rfind("127.0.0.1:", 0), 0u) << in.address();
    net::ClientRequest req;
    req.url = "http://" + in.address() + "/";
    req.timeout = 5s;
    auto resp = http.Do(req);
    ASSERT_TRUE(resp.ok()) << in.address() << ": " << resp.status().ToString();
    EXPECT_EQ(resp->status, 200);
    EXPECT_EQ(resp->body, kIndexHtml);
  }
}

TEST_F(KraneDockerTest, ContainersCarryLabelsLimitsAndThePort) {
  auto req = CreateRequest("limits", kHelloImage, 1);
  (*req.mutable_env())["GREETING"] = "hi";
  ASSERT_TRUE(Create(req).ok());
  auto containers = ContainersOf("limits");
  ASSERT_EQ(containers.size(), 1u);
  auto inspect = Docker("GET", "/containers/" + containers[0]["Id"].get<std::string>() + "/json");
  ASSERT_TRUE(inspect.ok());
  const Json& host = (*inspect)["HostConfig"];
  EXPECT_EQ(host["Memory"].get<int64_t>(), 64 * 1024 * 1024);
  EXPECT_EQ(host["MemorySwap"].get<int64_t>(), 64 * 1024 * 1024);
  EXPECT_EQ(host["NanoCpus"].get<int64_t>(), 250'000'000);
  EXPECT_GT(host["PidsLimit"].get<int64_t>(), 0);
  EXPECT_EQ(host["NetworkMode"], "host");
  EXPECT_EQ(host["Init"], true);
  EXPECT_EQ(host["RestartPolicy"]["Name"], "unless-stopped");
  EXPECT_EQ((*inspect)["Name"], "/" + DeploymentId("limits") + "-0");

  const Json& labels = (*inspect)["Config"]["Labels"];
  EXPECT_EQ(labels["slipway.managed-by"], "krane");
  EXPECT_EQ(labels["slipway.deployment"], DeploymentId("limits"));
  EXPECT_EQ(labels["slipway.namespace"], RunId());
  const std::string port = labels["slipway.port"].get<std::string>();
  const auto& env = (*inspect)["Config"]["Env"];
  EXPECT_NE(std::find(env.begin(), env.end(), "PORT=" + port), env.end()) << env.dump();
  EXPECT_NE(std::find(env.begin(), env.end(), "GREETING=hi"), env.end()) << env.dump();

  auto got = WaitFor("limits", 15s, IsRunning);
  ASSERT_EQ(got.instances_size(), 1);
  EXPECT_EQ(got.instances(0).address(), "127.0.0.1:" + port);
}

TEST_F(KraneDockerTest, SameCreateTwiceChangesNothing) {
  auto req = CreateRequest("twice", kHelloImage, 2);
  ASSERT_TRUE(Create(req).ok());
  auto before = ContainersOf("twice");
  ASSERT_EQ(before.size(), 2u);
  auto again = Create(req);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->instances_size(), 2);
  auto after = ContainersOf("twice");
  ASSERT_EQ(after.size(), 2u);
  std::set<std::string> ids_before, ids_after;
  for (const auto& c : before) ids_before.insert(c["Id"].get<std::string>());
  for (const auto& c : after) ids_after.insert(c["Id"].get<std::string>());
  EXPECT_EQ(ids_before, ids_after);

  // A replica removed behind krane's back is the only one created again.
  ASSERT_TRUE(
      Docker("DELETE", "/containers/" + after[0]["Id"].get<std::string>() + "?force=1").ok());
  ASSERT_TRUE(Create(req).ok());
  auto repaired = ContainersOf("twice");
  ASSERT_EQ(repaired.size(), 2u);
  std::set<std::string> names;
  for (const auto& c : repaired) names.insert(c["Names"][0].get<std::string>());
  EXPECT_EQ(names, (std::set<std::string>{"/" + DeploymentId("twice") + "-0",
                                          "/" + DeploymentId("twice") + "-1"}));
  EXPECT_EQ(WaitFor("twice", 15s, IsRunning).instances_size(), 2);
}

TEST_F(KraneDockerTest, AppThatExitsAtStartFailsQuicklyWithExitCodeAndLog) {
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(Create(CreateRequest("crash", kCrashImage, 1)).ok());
  auto got = WaitFor("crash", 10s, IsFailed);
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  ASSERT_EQ(got.instances_size(), 1);
  ASSERT_TRUE(IsFailed(got.instances(0))) << got.DebugString();
  EXPECT_LT(elapsed, 5s);
  const std::string& reason = got.instances(0).reason();
  EXPECT_NE(reason.find("exit code 3"), std::string::npos) << reason;
  EXPECT_NE(reason.find("boom"), std::string::npos) << reason;
  EXPECT_NE(reason.find("starting"), std::string::npos)
      << "stdout belongs in the log too: " << reason;
  std::cout << "FAILED after " << elapsed.count() << " ms: " << reason << "\n";

  // dockerd keeps restarting it (unless-stopped): it must stay FAILED, never look PENDING.
  for (int i = 0; i < 15; ++i) {
    auto again = Get("crash");
    ASSERT_TRUE(again.ok());
    ASSERT_EQ(again->instances_size(), 1);
    EXPECT_TRUE(IsFailed(again->instances(0))) << again->DebugString();
    std::this_thread::sleep_for(100ms);
  }
}

TEST_F(KraneDockerTest, AppThatNeverListensStaysPending) {
  ASSERT_TRUE(Create(CreateRequest("sleeper", kSleepImage, 1)).ok());
  const auto until = std::chrono::steady_clock::now() + 3s;
  int polls = 0;
  while (std::chrono::steady_clock::now() < until) {
    auto got = Get("sleeper");
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->instances_size(), 1);
    EXPECT_EQ(got->instances(0).status(), v1::INSTANCE_STATUS_PENDING) << got->DebugString();
    ++polls;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_GE(polls, 5);
  auto got = Get("sleeper");
  ASSERT_TRUE(got.ok());
  EXPECT_NE(got->instances(0).reason().find("not ready"), std::string::npos) << got->DebugString();
}

TEST_F(KraneDockerTest, HealthCheckPathDecidesReadiness) {
  auto missing = CreateRequest("health-missing", kHelloImage, 1);
  missing.set_health_check_path("/no-such-page");
  auto present = CreateRequest("health-ok", kHelloImage, 1);
  present.set_health_check_path("/index.html");
  ASSERT_TRUE(Create(missing).ok());
  ASSERT_TRUE(Create(present).ok());
  EXPECT_TRUE(IsRunning(WaitFor("health-ok", 15s, IsRunning).instances(0)));
  // The server answers (a TCP probe would pass), but 404 is not ready.
  std::this_thread::sleep_for(500ms);
  auto got = Get("health-missing");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->instances(0).status(), v1::INSTANCE_STATUS_PENDING) << got->DebugString();
  EXPECT_NE(got->instances(0).reason().find("HTTP 404"), std::string::npos) << got->DebugString();
}

TEST_F(KraneDockerTest, AppOverItsMemoryLimitIsFailedAsOutOfMemory) {
  auto req = CreateRequest("hog", kHogImage, 1);
  req.set_memory_mib(16);
  ASSERT_TRUE(Create(req).ok());
  auto got = WaitFor("hog", 30s, IsFailed);
  ASSERT_EQ(got.instances_size(), 1);
  ASSERT_TRUE(IsFailed(got.instances(0))) << got.DebugString();
  EXPECT_NE(got.instances(0).reason().find("out of memory (OOM-killed)"), std::string::npos)
      << got.DebugString();
  EXPECT_NE(got.instances(0).reason().find("allocating"), std::string::npos) << got.DebugString();
}

TEST_F(KraneDockerTest, DeleteRemovesEveryContainerAndIsIdempotent) {
  ASSERT_TRUE(Create(CreateRequest("gone", kHelloImage, 3)).ok());
  ASSERT_EQ(ContainersOf("gone").size(), 3u);
  auto deleted = Delete("gone");
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(deleted->removed(), 3);
  EXPECT_TRUE(ContainersOf("gone").empty());
  auto again = Delete("gone");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->removed(), 0);
  auto got = Get("gone");
  EXPECT_EQ(got.status().code(), Code::kNotFound) << got.status().ToString();
}

TEST_F(KraneDockerTest, ImageThatCannotBePulledIsAnErrorThatSaysSo) {
  // Nothing listens on port 1: the pull fails fast, offline.
  auto created = Create(CreateRequest("nopull", "127.0.0.1:1/slipway-test/absent:1", 1));
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.status().message().find("pulling it failed"), std::string::npos)
      << created.status().ToString();
  EXPECT_TRUE(ContainersOf("nopull").empty());
}

TEST_F(KraneDockerTest, MissingOrWrongTokenIsUnauthenticated) {
  auto req = CreateRequest("token", kHelloImage, 1);
  auto no_token = Create(req, "");
  EXPECT_EQ(no_token.status().code(), Code::kUnauthenticated) << no_token.status().ToString();
  auto wrong = Create(req, "krane-integration-tokem");
  EXPECT_EQ(wrong.status().code(), Code::kUnauthenticated) << wrong.status().ToString();
  EXPECT_TRUE(ContainersOf("token").empty());
}

}  // namespace
}  // namespace slipway::krane
