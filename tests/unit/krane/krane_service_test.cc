// The krane service in front of a fake backend: token checks, request validation and the
// mapping between the proto API and KraneBackend, over a real loopback Connect server.
#include "krane/krane_service.h"

#include <gtest/gtest.h>

#include <functional>
#include <mutex>

#include "net/connect.h"
#include "net/health_service.h"
#include "net/http_server.h"
#include "slipway/health/v1/health.pb.h"
#include "slipway/krane/v1/deployment.pb.h"

namespace slipway::krane {
namespace {

namespace v1 = slipway::krane::v1;

constexpr const char* kToken = "s3cret-krane-token";
constexpr const char* kService = "slipway.krane.v1.DeploymentService";

// Records what reaches it; answers with one instance per replica.
class FakeBackend : public KraneBackend {
 public:
  std::string_view name() const override { return "fake"; }
  Result<std::vector<Instance>> CreateDeployment(const DeploymentSpec& spec) override {
    std::lock_guard lock(mu);
    ++calls;
    last_spec = spec;
    std::vector<Instance> out;
    for (int i = 0; i < spec.replicas; ++i) {
      out.push_back({spec.ref.deployment_id + "-" + std::to_string(i),
                     "127.0.0.1:1000" + std::to_string(i), InstanceStatus::kPending, "starting"});
    }
    return out;
  }
  Result<std::vector<Instance>> GetDeployment(const DeploymentRef& ref) override {
    std::lock_guard lock(mu);
    ++calls;
    last_ref = ref;
    return std::vector<Instance>{{ref.deployment_id + "-0", "127.0.0.1:10000",
                                  InstanceStatus::kFailed,
                                  "exited with exit code 3; last log lines:\nboom"}};
  }
  Result<int> DeleteDeployment(const DeploymentRef& ref) override {
    std::lock_guard lock(mu);
    ++calls;
    last_ref = ref;
    return 2;
  }

  std::mutex mu;
  int calls = 0;
  DeploymentSpec last_spec;
  DeploymentRef last_ref;
};

class KraneServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    service_ = std::make_unique<KraneService>(backend_, kToken);
    service_->Register(router_);
    auto server = net::HttpServer::Start({}, router_.AsHandler());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }

  net::ConnectClient Client(std::string token) {
    net::ConnectClient::Options o;
    o.base_url = "http://" + server_->address();
    o.bearer_token = std::move(token);
    return net::ConnectClient(o);
  }

  static v1::CreateDeploymentRequest ValidCreate() {
    v1::CreateDeploymentRequest req;
    req.set_namespace_("ws-1");
    req.set_deployment_id("dep_abc-1");
    req.set_image("hello:1");
    req.set_replicas(2);
    return req;
  }

  Status Create(const net::ConnectClient& client, const v1::CreateDeploymentRequest& req,
                v1::CreateDeploymentResponse* resp = nullptr) {
    return client.CallUnary(net::ConnectProcedure(kService, "CreateDeployment"), req, resp);
  }

  FakeBackend backend_;
  net::ConnectRouter router_;
  std::unique_ptr<KraneService> service_;
  std::unique_ptr<net::HttpServer> server_;
};

TEST_F(KraneServiceTest, MissingTokenIsUnauthenticatedAndNeverReachesTheBackend) {
  Status st = Create(Client(""), ValidCreate());
  EXPECT_EQ(st.code(), Code::kUnauthenticated) << st.ToString();
  EXPECT_NE(st.message().find("KRANE_TOKEN"), std::string::npos) << st.message();
  v1::GetDeploymentRequest get;
  get.set_deployment_id("dep");
  EXPECT_EQ(
      Client("").CallUnary(net::ConnectProcedure(kService, "GetDeployment"), get, nullptr).code(),
      Code::kUnauthenticated);
  v1::DeleteDeploymentRequest del;
  del.set_deployment_id("dep");
  EXPECT_EQ(Client("")
                .CallUnary(net::ConnectProcedure(kService, "DeleteDeployment"), del, nullptr)
                .code(),
            Code::kUnauthenticated);
  EXPECT_EQ(backend_.calls, 0);
}

TEST_F(KraneServiceTest, WrongTokenIsUnauthenticated) {
  for (std::string wrong : {"s3cret-krane-tokeN", "s3cret-krane-token-and-more", "s3cret", "x"}) {
    Status st = Create(Client(wrong), ValidCreate());
    EXPECT_EQ(st.code(), Code::kUnauthenticated) << wrong << ": " << st.ToString();
  }
  EXPECT_EQ(backend_.calls, 0);
}

TEST_F(KraneServiceTest, EmptyConfiguredTokenRefusesEveryone) {
  net::ConnectRouter router;
  KraneService open_service(backend_, "");
  open_service.Register(router);
  auto server = net::HttpServer::Start({}, router.AsHandler());
  ASSERT_TRUE(server.ok());
  net::ConnectClient::Options o;
  o.base_url = "http://" + (*server)->address();
  net::ConnectClient client(o);
  EXPECT_EQ(Create(client, ValidCreate()).code(), Code::kUnauthenticated);
  EXPECT_EQ(backend_.calls, 0);
}

TEST_F(KraneServiceTest, HealthCheckNeedsNoToken) {
  health::v1::CheckRequest req;
  health::v1::CheckResponse resp;
  Status st = Client("").CallUnary(net::HealthCheckProcedure(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(resp.status(), health::v1::CheckResponse::SERVING_STATUS_SERVING);
}

TEST_F(KraneServiceTest, CreateAppliesDefaultsAndReturnsInstances) {
  v1::CreateDeploymentRequest req = ValidCreate();
  req.clear_namespace_();
  (*req.mutable_env())["GREETING"] = "hi";
  req.set_health_check_path("/healthz");
  v1::CreateDeploymentResponse resp;
  Status st = Create(Client(kToken), req, &resp);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(resp.instances_size(), 2);
  EXPECT_EQ(resp.instances(1).id(), "dep_abc-1-1");
  EXPECT_EQ(resp.instances(1).status(), v1::INSTANCE_STATUS_PENDING);
  EXPECT_EQ(backend_.last_spec.ref.ns, kDefaultNamespace);
  EXPECT_EQ(backend_.last_spec.memory_mib, kDefaultMemoryMib);
  EXPECT_EQ(backend_.last_spec.cpu_millicores, kDefaultCpuMillicores);
  EXPECT_EQ(backend_.last_spec.env.at("GREETING"), "hi");
  EXPECT_EQ(backend_.last_spec.health_check_path, "/healthz");
}

TEST_F(KraneServiceTest, GetAndDeleteReachTheBackend) {
  v1::GetDeploymentRequest get;
  get.set_namespace_("ws-1");
  get.set_deployment_id("dep1");
  v1::GetDeploymentResponse got;
  ASSERT_TRUE(
      Client(kToken).CallUnary(net::ConnectProcedure(kService, "GetDeployment"), get, &got).ok());
  ASSERT_EQ(got.instances_size(), 1);
  EXPECT_EQ(got.instances(0).status(), v1::INSTANCE_STATUS_FAILED);
  EXPECT_NE(got.instances(0).reason().find("boom"), std::string::npos);
  EXPECT_EQ(backend_.last_ref.ns, "ws-1");

  v1::DeleteDeploymentRequest del;
  del.set_deployment_id("dep1");
  v1::DeleteDeploymentResponse deleted;
  ASSERT_TRUE(Client(kToken)
                  .CallUnary(net::ConnectProcedure(kService, "DeleteDeployment"), del, &deleted)
                  .ok());
  EXPECT_EQ(deleted.removed(), 2);
  EXPECT_EQ(backend_.last_ref.ns, kDefaultNamespace);
}

TEST_F(KraneServiceTest, InvalidRequestIsInvalidArgumentAndNeverReachesTheBackend) {
  v1::CreateDeploymentRequest req = ValidCreate();
  req.set_deployment_id("Dep/1");
  Status st = Create(Client(kToken), req);
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("deployment_id \"Dep/1\""), std::string::npos) << st.message();

  req = ValidCreate();
  req.set_replicas(0);
  st = Create(Client(kToken), req);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("replicas is 0; it must be between 1 and 100"), std::string::npos)
      << st.message();

  v1::GetDeploymentRequest get;  // no deployment id
  st = Client(kToken).CallUnary(net::ConnectProcedure(kService, "GetDeployment"), get, nullptr);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("deployment_id is empty"), std::string::npos) << st.message();
  EXPECT_EQ(backend_.calls, 0);
}

DeploymentSpec GoodSpec() {
  DeploymentSpec s;
  s.ref = {"default", "dep-1"};
  s.image = "127.0.0.1:5000/app:dep-1";
  s.replicas = 1;
  s.cpu_millicores = 500;
  s.memory_mib = 128;
  return s;
}

TEST(KraneValidationTest, AcceptsAGoodSpecAndTheBounds) {
  EXPECT_TRUE(ValidateDeploymentSpec(GoodSpec()).ok());
  DeploymentSpec s = GoodSpec();
  s.replicas = kMaxReplicas;
  s.memory_mib = kMinMemoryMib;
  s.cpu_millicores = kMaxCpuMillicores;
  s.ref.deployment_id = "0_a-B";
  s.port = 65535;
  s.env = {{"_X1", ""}, {"PATH", "/bin"}};
  s.health_check_path = "/health?full=1";
  EXPECT_TRUE(ValidateDeploymentSpec(s).ok()) << ValidateDeploymentSpec(s).ToString();
}

TEST(KraneValidationTest, RejectsEachBadFieldNamingIt) {
  struct Case {
    std::function<void(DeploymentSpec&)> mutate;
    std::string expected;  // part of the message
  };
  const std::vector<Case> cases = {
      {[](auto& s) { s.ref.deployment_id = ""; }, "deployment_id is empty"},
      {[](auto& s) { s.ref.deployment_id = "De p"; }, "contains ' '"},
      {[](auto& s) { s.ref.deployment_id = "a.b"; }, "contains '.'"},
      {[](auto& s) { s.ref.deployment_id = "-a"; },
       "must start with a letter or a digit"},
      {[](auto& s) { s.ref.deployment_id = std::string(64, 'a'); }, "use at most 63"},
      {[](auto& s) { s.ref.ns = "Team A"; }, "namespace \"Team A\""},
      {[](auto& s) { s.image = ""; }, "image is empty"},
      {[](auto& s) { s.image = "app :1"; }, "is not an image reference"},
      {[](auto& s) { s.replicas = 101; }, "replicas is 101; it must be between 1 and 100"},
      {[](auto& s) { s.replicas = -1; }, "replicas is -1"},
      {[](auto& s) { s.memory_mib = 8; }, "memory_mib is 8; it must be between 16 and 65536"},
      {[](auto& s) { s.memory_mib = 65537; }, "memory_mib is 65537"},
      {[](auto& s) { s.cpu_millicores = 5; },
       "cpu_millicores is 5; it must be between 10 and 64000"},
      {[](auto& s) { s.port = 70000; }, "port is 70000"},
      {[](auto& s) {
         s.env = {{"1X", "v"}};
       },
       "env name \"1X\""},
      {[](auto& s) {
         s.env = {{"A-B", "v"}};
       },
       "env name \"A-B\""},
      {[](auto& s) {
         s.env = {{"", "v"}};
       },
       "env name \"\""},
      {[](auto& s) { s.health_check_path = "healthz"; }, "must be a URL path starting with '/'"},
      {[](auto& s) { s.health_check_path = "/a b"; }, "must be a URL path"},
  };
  for (const Case& c : cases) {
    DeploymentSpec s = GoodSpec();
    c.mutate(s);
    Status st = ValidateDeploymentSpec(s);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << c.expected;
    EXPECT_NE(st.message().find(c.expected), std::string::npos)
        << "expected \"" << c.expected << "\" in: " << st.message();
  }
}

TEST(KraneBackendFactoryTest, KubernetesNeedsAKubeconfigAndUnknownIsInvalid) {
  KraneBackendConfig config;
  config.backend = "kubernetes";
  config.kubeconfig = "/nonexistent/kubeconfig";
  auto k8s = MakeKraneBackend(config);
  ASSERT_FALSE(k8s.ok());
  EXPECT_EQ(k8s.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(k8s.status().message().find("/nonexistent/kubeconfig"), std::string::npos);
  EXPECT_NE(k8s.status().message().find("--kubeconfig"), std::string::npos);

  config.backend = "nomad";
  auto unknown = MakeKraneBackend(config);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Code::kInvalidArgument);

  config.backend = "docker";
  config.docker_host = "ftp://nope";
  auto bad_host = MakeKraneBackend(config);
  ASSERT_FALSE(bad_host.ok());
  EXPECT_EQ(bad_host.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad_host.status().message().find("--docker-host"), std::string::npos);

  config.docker_host = "unix:///var/run/docker.sock";
  auto docker = MakeKraneBackend(config);
  ASSERT_TRUE(docker.ok()) << docker.status().ToString();
  EXPECT_EQ((*docker)->name(), "docker");
}

}  // namespace
}  // namespace slipway::krane
