// krane's WatchDeployment on the kubernetes backend against the real test cluster
// (scripts/kubernetes.sh), served in-process with an hour-long safety poll: the pod watch is
// what moves the stream. Shown: a pod on the real kubelet followed from PENDING to RUNNING (its
// Ready condition, set by the kubelet's probe), until_settled ending the stream there; a pod
// deleted behind krane's back reported at once (not RUNNING), then RUNNING again when the
// StatefulSet controller has replaced it.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "krane/backend.h"
#include "krane/krane_service.h"
#include "krane/kubernetes/objects.h"
#include "net/connect.h"
#include "net/http_server.h"
#include "slipway/krane/v1/deployment.pb.h"
#include "support/kubernetes_cluster.h"
#include "support/krane_watch_reader.h"
#include "support/test_support.h"

namespace slipway::krane {
namespace {

namespace v1 = slipway::krane::v1;
using namespace std::chrono_literals;

constexpr const char* kToken = "krane-k8s-watch-token";
constexpr const char* kService = "slipway.krane.v1.DeploymentService";

std::string RunId() {
  static const std::string id = "kw" + std::to_string(::getpid());
  return id;
}

bool IsRunning(const v1::Instance& in) { return in.status() == v1::INSTANCE_STATUS_RUNNING; }

// One WatchDeployment stream, each wait bounded by 120s.
class StreamReader : public testing::KraneWatchReader {
 public:
  StreamReader(const net::ConnectClient& client, v1::WatchDeploymentRequest req)
      : KraneWatchReader(client, std::move(req), 120s) {}
};

class KubernetesWatchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    problem_ = new std::string(testing::KubernetesClusterProblem());
    if (!problem_->empty()) return;
    std::string error;
    image_ = new std::string(testing::BuildAndPushImage(
        "slipway-test/k8s-watch-hello:1",
        R"(CMD ["/bin/busybox","sh","-c","exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www"])",
        &error));
    if (image_->empty()) *problem_ = error;
    testing::Kubectl("create namespace " + RunId());
  }
  static void TearDownTestSuite() {
    if (problem_ && problem_->empty()) {
      testing::Kubectl("delete namespace " + RunId() + " --wait=false");
    }
    delete image_;
    delete problem_;
  }

  void SetUp() override {
    ASSERT_TRUE(problem_->empty()) << *problem_;
    KraneBackendConfig c;
    c.backend = "kubernetes";
    c.kubeconfig = testing::TestKubeconfig();
    c.kube_namespace = RunId();
    c.host_network = true;
    c.termination_grace_seconds = 1;
    auto backend = MakeKraneBackend(c);
    ASSERT_TRUE(backend.ok()) << backend.status().ToString();
    backend_ = std::move(*backend);
    FollowOptions follow;
    follow.safety_poll = 1h;
    service_ = std::make_unique<KraneService>(*backend_, kToken, follow);
    service_->Register(router_);
    auto server = net::HttpServer::Start({}, router_.AsHandler());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    net::ConnectClient::Options o;
    o.base_url = "http://" + server_->address();
    o.bearer_token = kToken;
    o.timeout = 60s;
    client_ = std::make_unique<net::ConnectClient>(o);
  }

  void TearDown() override {
    if (!deployment_.empty()) {
      v1::DeleteDeploymentRequest del;
      del.set_namespace_("default");
      del.set_deployment_id(deployment_);
      (void)client_->CallUnary(net::ConnectProcedure(kService, "DeleteDeployment"), del, nullptr);
    }
    if (server_) server_->Shutdown(2s);
  }

  std::string Create(const std::string& name) {
    v1::CreateDeploymentRequest req;
    req.set_namespace_("default");
    req.set_deployment_id(RunId() + "-" + name);
    req.set_image(*image_);
    req.set_replicas(1);
    req.set_memory_mib(64);
    req.set_cpu_millicores(100);
    req.set_health_check_path("/index.html");
    auto created = client_->Call<v1::CreateDeploymentResponse>(
        net::ConnectProcedure(kService, "CreateDeployment"), req);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    deployment_ = req.deployment_id();
    return deployment_;
  }

  v1::WatchDeploymentRequest Watch(const std::string& id, bool until_settled) {
    v1::WatchDeploymentRequest req;
    req.set_namespace_("default");
    req.set_deployment_id(id);
    req.set_until_settled(until_settled);
    return req;
  }

  static inline std::string* problem_ = nullptr;
  static inline std::string* image_ = nullptr;
  std::unique_ptr<KraneBackend> backend_;
  std::unique_ptr<KraneService> service_;
  net::ConnectRouter router_;
  std::unique_ptr<net::HttpServer> server_;
  std::unique_ptr<net::ConnectClient> client_;
  std::string deployment_;
};

TEST_F(KubernetesWatchTest, APodOnTheRealKubeletIsFollowedToRunningAndTheStreamEndsThere) {
  const std::string id = Create("settle");
  StreamReader stream(*client_, Watch(id, /*until_settled=*/true));
  auto ended = stream.WaitEnded();
  ASSERT_TRUE(ended.has_value()) << "the stream did not end";
  EXPECT_TRUE(ended->ok()) << ended->ToString();
  auto messages = stream.messages();
  ASSERT_FALSE(messages.empty());
  EXPECT_TRUE(IsRunning(messages.back().instances(0))) << messages.back().DebugString();
  EXPECT_EQ(messages.back().instances(0).address().rfind("127.0.0.1:", 0), 0u);
}

TEST_F(KubernetesWatchTest, APodDeletedBehindKranesBackIsReportedAndItsReplacementFollowed) {
  const std::string id = Create("replace");
  StreamReader stream(*client_, Watch(id, /*until_settled=*/false));
  auto running = stream.WaitFor(IsRunning);
  ASSERT_TRUE(running.has_value()) << "the pod never became RUNNING on the stream";
  // Nothing is pending now and the safety poll is an hour away: only the pod watch can tell.
  auto deleted = testing::Kubectl("-n " + RunId() + " delete pod " +
                                  kubernetes::ObjectName(id) + "-0 --wait=false");
  ASSERT_EQ(deleted.exit_code, 0) << deleted.output;
  auto gone = stream.WaitFor([](const v1::Instance& in) { return !IsRunning(in); }, *running + 1);
  ASSERT_TRUE(gone.has_value()) << "the deletion never reached the stream";
  auto back = stream.WaitFor(IsRunning, *gone + 1);
  EXPECT_TRUE(back.has_value()) << "the replacement pod never became RUNNING on the stream";
}

}  // namespace
}  // namespace slipway::krane
