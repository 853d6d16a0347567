// The kubernetes krane backend against the real test cluster (scripts/kubernetes.sh): apps that
// really answer on the real kubelet (host networking, one replica each), many replicas on
// kwok's fake nodes, what krane wrote read back from the API, idempotent Create, failures named
// (exit code and log, ImagePullBackOff, Unschedulable), Delete for ids with upper-case letters,
// the watch across an API server restart, krane's RBAC manifest, and errors as sentences.
//
// Each test suite run has its own namespace, deleted at the end. If the cluster is not
// running, every test fails saying how to start it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <thread>

#include "krane/backend.h"
#include "krane/kubernetes/kubernetes_backend.h"
#include "krane/kubernetes/objects.h"
#include "net/http_client.h"
#include "support/kubernetes_cluster.h"
#include "support/test_support.h"

namespace slipway::krane {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

std::string RunId() {
  static const std::string id = "kt" + std::to_string(::getpid());
  return id;
}

struct Images {
  std::string hello, crash, hog;
};

class KubernetesBackendTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    problem_ = new std::string(testing::KubernetesClusterProblem());
    if (!problem_->empty()) return;
    images_ = new Images();
    std::string error;
    images_->hello = testing::BuildAndPushImage(
        "slipway-test/k8s-hello:1",
        R"(CMD ["/bin/busybox","sh","-c","exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www"])",
        &error);
    images_->crash = testing::BuildAndPushImage(
        "slipway-test/k8s-crash:1",
        R"(CMD ["/bin/busybox","sh","-c","echo starting up; echo boom: cannot open config >&2; exit 3"])",
        &error);
    // Holds 200 MB in a shell variable: far above the limit the OOM test sets.
    images_->hog = testing::BuildAndPushImage(
        "slipway-test/k8s-hog:1",
        R"(CMD ["/bin/busybox","sh","-c","echo allocating; x=$(/bin/busybox head -c 200000000 /dev/zero | /bin/busybox tr '\\0' a); echo survived"])",
        &error);
    if (images_->hello.empty() || images_->crash.empty() || images_->hog.empty()) {
      *problem_ = error;
    }
    testing::Kubectl("create namespace " + RunId());
  }

  static void TearDownTestSuite() {
    if (problem_ && problem_->empty()) {
      testing::Kubectl("delete namespace " + RunId() + " --wait=false");
    }
    delete images_;
    images_ = nullptr;
    delete problem_;
    problem_ = nullptr;
  }

  void SetUp() override { ASSERT_TRUE(problem_->empty()) << *problem_; }

  static KraneBackendConfig RealNodeConfig() {
    KraneBackendConfig c;
    c.backend = "kubernetes";
    c.kubeconfig = testing::TestKubeconfig();
    c.kube_namespace = RunId();
    c.host_network = true;
    c.termination_grace_seconds = 1;
    return c;
  }

  static KraneBackendConfig KwokConfig() {
    KraneBackendConfig c = RealNodeConfig();
    c.host_network = false;
    c.address_mode = "pod-ip";
    c.node_selector = "type=kwok";
    c.tolerations = "kwok.x-k8s.io/node=fake:NoSchedule";
    return c;
  }

  static std::unique_ptr<KraneBackend> Make(const KraneBackendConfig& c) {
    auto b = MakeKraneBackend(c);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(*b) : nullptr;
  }

  static DeploymentSpec Spec(const std::string& name, const std::string& image, int replicas) {
    DeploymentSpec s;
    s.ref = {"default", RunId() + "-" + name};
    s.image = image;
    s.replicas = replicas;
    s.cpu_millicores = 100;
    s.memory_mib = 64;
    return s;
  }

  // Polls GetDeployment until done(instances) or timeout; returns the last answer.
  static std::vector<Instance> WaitFor(
      KraneBackend& b, const DeploymentRef& ref, std::chrono::milliseconds timeout,
      const std::function<bool(const std::vector<Instance>&)>& done) {
    const auto deadline = Clock::now() + timeout;
    std::vector<Instance> last;
    while (Clock::now() < deadline) {
      auto got = b.GetDeployment(ref);
      if (got.ok()) {
        last = *got;
        if (done(last)) return last;
      }
      std::this_thread::sleep_for(200ms);
    }
    return last;
  }

  static bool AllRunning(const std::vector<Instance>& in, size_t n) {
    if (in.size() != n) return false;
    for (const auto& i : in) {
      if (i.status != InstanceStatus::kRunning) return false;
    }
    return true;
  }

  static bool AnyFailed(const std::vector<Instance>& in) {
    for (const auto& i : in) {
      if (i.status == InstanceStatus::kFailed) return true;
    }
    return false;
  }

  static std::string Describe(const std::vector<Instance>& in) {
    std::string out;
    for (const auto& i : in) {
      out += i.id + " " + std::string(InstanceStatusName(i.status)) + " " + i.address + " " +
             i.reason + "\n";
    }
    return out;
  }

  static Json Object(const std::string& kind, const std::string& name) {
    return testing::KubectlJson("-n " + RunId() + " get " + kind + " " + name);
  }

  static inline std::string* problem_ = nullptr;
  static inline Images* images_ = nullptr;
};

TEST_F(KubernetesBackendTest, AppOnTheRealKubeletIsReadyAndAnswersHttp) {
  auto b = Make(RealNodeConfig());
  ASSERT_TRUE(b);
  DeploymentSpec s = Spec("hello", images_->hello, 1);
  s.health_check_path = "/index.html";
  auto created = b->CreateDeployment(s);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto in = WaitFor(*b, s.ref, 90s, [](auto& v) { return AllRunning(v, 1) || AnyFailed(v); });
  ASSERT_TRUE(AllRunning(in, 1)) << Describe(in);
  EXPECT_EQ(in[0].id, s.ref.deployment_id + "-0");
  ASSERT_EQ(in[0].address.rfind("127.0.0.1:", 0), 0u) << in[0].address;

  // RUNNING came from the pod's Ready condition, which the kubelet set from the probe.
  Json pod = Object("pod", kubernetes::ObjectName(s.ref.deployment_id) + "-0");
  ASSERT_TRUE(pod.is_object());
  bool ready = false;
  for (const Json& c : pod["status"]["conditions"]) {
    if (c["type"] == "Ready") ready = c["status"] == "True";
  }
  EXPECT_TRUE(ready);
  EXPECT_EQ(pod["spec"]["hostNetwork"], true);

  net::HttpClient http;
  net::ClientRequest req;
  req.url = "http://" + in[0].address + "/index.html";
  auto reply = http.Do(req);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "hello from kubernetes\n");
  auto deleted = b->DeleteDeployment(s.ref);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(*deleted, 1);
}

TEST_F(KubernetesBackendTest, ObjectsCarryTheSpecAndTheSameCreateTwiceChangesNothing) {
  auto b = Make(KwokConfig());
  ASSERT_TRUE(b);
  DeploymentSpec s = Spec("spec", images_->hello, 3);
  s.cpu_millicores = 250;
  s.memory_mib = 96;
  s.port = 8081;
  s.env = {{"MODE", "test"}};
  s.health_check_path = "/healthz";
  ASSERT_TRUE(b->CreateDeployment(s).ok());
  auto in = WaitFor(*b, s.ref, 60s, [](auto& v) { return AllRunning(v, 3); });
  ASSERT_TRUE(AllRunning(in, 3)) << Describe(in);

  const std::string name = kubernetes::ObjectName(s.ref.deployment_id);
  Json sts = Object("statefulset", name);
  ASSERT_TRUE(sts.is_object());
  EXPECT_EQ(sts["spec"]["replicas"], 3);
  EXPECT_EQ(sts["status"]["readyReplicas"], 3);
  const Json& c = sts["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["resources"]["requests"], c["resources"]["limits"]);
  EXPECT_EQ(c["resources"]["limits"]["cpu"], "250m");
  EXPECT_EQ(c["resources"]["limits"]["memory"], "96Mi");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/healthz");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["port"], 8081);
  EXPECT_EQ(c["ports"][0]["containerPort"], 8081);
  Json env = Json::object();
  for (const Json& e : c["env"]) env[e["name"].get<std::string>()] = e["value"];
  EXPECT_EQ(env["PORT"], "8081");
  EXPECT_EQ(env["MODE"], "test");
  for (const Json* labels :
       {&sts["metadata"]["labels"], &sts["spec"]["template"]["metadata"]["labels"]}) {
    EXPECT_EQ((*labels)["app.kubernetes.io/managed-by"], "slipway-krane");
    EXPECT_EQ((*labels)["slipway.dev/deployment"], s.ref.deployment_id);
    EXPECT_EQ((*labels)["slipway.dev/workspace"], "default");
  }
  Json svc = Object("service", name);
  ASSERT_TRUE(svc.is_object());
  EXPECT_EQ(svc["spec"]["clusterIP"], "None");
  EXPECT_EQ(svc["spec"]["publishNotReadyAddresses"], true);
  EXPECT_FALSE(svc["metadata"].contains("ownerReferences"));
  // kwok's pod IPs come from its --cidr (127.1.0.0/16): addresses are pod IP and port.
  for (const auto& i : in) EXPECT_EQ(i.address.rfind("127.1.", 0), 0u) << i.address;

  // The same request again: no write at all (resourceVersion and generation unchanged).
  const std::string sts_rv = sts["metadata"]["resourceVersion"];
  const std::string svc_rv = svc["metadata"]["resourceVersion"];
  auto again = b->CreateDeployment(s);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->size(), 3u);
  EXPECT_EQ(Object("statefulset", name)["metadata"]["resourceVersion"], sts_rv);
  EXPECT_EQ(Object("service", name)["metadata"]["resourceVersion"], svc_rv);
  // A fresh krane (nothing in memory) sees the same and changes nothing either.
  auto other = Make(KwokConfig());
  ASSERT_TRUE(other->CreateDeployment(s).ok());
  EXPECT_EQ(Object("statefulset", name)["metadata"]["resourceVersion"], sts_rv);

  // A different spec is patched in place.
  s.replicas = 2;
  ASSERT_TRUE(b->CreateDeployment(s).ok());
  Json patched = Object("statefulset", name);
  EXPECT_EQ(patched["spec"]["replicas"], 2);
  EXPECT_GT(patched["metadata"]["generation"].get<int>(), sts["metadata"]["generation"].get<int>());
  ASSERT_TRUE(b->DeleteDeployment(s.ref).ok());
}

TEST_F(KubernetesBackendTest, AnAppThatExitsFailsWithinSecondsWithItsExitCodeAndLog) {
  auto b = Make(RealNodeConfig());
  DeploymentSpec s = Spec("crash", images_->crash, 1);
  ASSERT_TRUE(b->CreateDeployment(s).ok());
  const auto start = Clock::now();
  auto in = WaitFor(*b, s.ref, 60s, AnyFailed);
  const auto took = Clock::now() - start;
  ASSERT_TRUE(AnyFailed(in)) << Describe(in);
  EXPECT_LT(took, 30s);
  EXPECT_NE(in[0].reason.find("exit code 3"), std::string::npos) << in[0].reason;
  EXPECT_NE(in[0].reason.find("boom: cannot open config"), std::string::npos) << in[0].reason;
  EXPECT_NE(in[0].reason.find("starting up"), std::string::npos) << in[0].reason;

  // Its runtime log, from the kubelet's pods/log, with each line's time.
  auto logs = b->Logs(s.ref, {});
  ASSERT_TRUE(logs.ok()) << logs.status().ToString();
  bool started = false;
  for (const auto& l : *logs) {
    EXPECT_EQ(l.instance_id, kubernetes::ObjectName(s.ref.deployment_id) + "-0");
    EXPECT_GT(l.time_ns, 0) << l.text;
    started = started || l.text.find("starting up") != std::string::npos;
  }
  EXPECT_TRUE(started) << "the app's own line is in its log";
  if (!logs->empty()) {
    auto later = b->Logs(s.ref, {-1, logs->back().time_ns, 0});
    ASSERT_TRUE(later.ok());
    for (const auto& l : *later) EXPECT_GT(l.time_ns, logs->back().time_ns) << "only newer lines";
  }
  ASSERT_TRUE(b->DeleteDeployment(s.ref).ok());
}

TEST_F(KubernetesBackendTest, AnAppOverItsMemoryLimitIsOomKilled) {
  auto b = Make(RealNodeConfig());
  DeploymentSpec s = Spec("hog", images_->hog, 1);
  s.memory_mib = 32;
  ASSERT_TRUE(b->CreateDeployment(s).ok());
  auto in = WaitFor(*b, s.ref, 60s, AnyFailed);
  ASSERT_TRUE(AnyFailed(in)) << Describe(in);
  EXPECT_NE(in[0].reason.find("OOMKilled"), std::string::npos) << in[0].reason;
  EXPECT_NE(in[0].reason.find("allocating"), std::string::npos) << in[0].reason;
  ASSERT_TRUE(b->DeleteDeployment(s.ref).ok());
}

TEST_F(KubernetesBackendTest, AnImageThatDoesNotExistFailsWithImagePullBackOff) {
  auto b = Make(RealNodeConfig());
  DeploymentSpec s = Spec("noimage", "127.0.0.1:5000/slipway-test/does-not-exist:1", 1);
  ASSERT_TRUE(b->CreateDeployment(s).ok());
  auto in = WaitFor(*b, s.ref, 60s, [](auto& v) {
    return AnyFailed(v) && v[0].reason.find("ImagePullBackOff") != std::string::npos;
  });
  ASSERT_TRUE(AnyFailed(in)) << Describe(in);
  EXPECT_NE(in[0].reason.find("ImagePullBackOff"), std::string::npos) << in[0].reason;
  EXPECT_NE(in[0].reason.find("does-not-exist"), std::string::npos) << in[0].reason;
  ASSERT_TRUE(b->DeleteDeployment(s.ref).ok());
}

TEST_F(KubernetesBackendTest, APodLargerThanTheNodeFailsWithTheSchedulersReason) {
  auto b = Make(RealNodeConfig());
  DeploymentSpec s = Spec("huge", images_->hello, 1);
  s.memory_mib = 60 * 1024;  // the node has 24 GiB
  ASSERT_TRUE(b->CreateDeployment(s).ok());
  auto in = WaitFor(*b, s.ref, 30s, AnyFailed);
  ASSERT_TRUE(AnyFailed(in)) << Describe(in);
  EXPECT_NE(in[0].reason.find("Unschedulable"), std::string::npos) << in[0].reason;
  EXPECT_NE(in[0].reason.find("Insufficient memory"), std::string::npos) << in[0].reason;
  ASSERT_TRUE(b->DeleteDeployment(s.ref).ok());
}

TEST_F(KubernetesBackendTest, DeleteLeavesNothingEvenForUpperCaseIds) {
  auto b = Make(KwokConfig());
  DeploymentSpec s = Spec("x", images_->hello, 2);
  s.ref.deployment_id = "Mixed_Case-" + RunId();
  auto created = b->CreateDeployment(s);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto in = WaitFor(*b, s.ref, 60s, [](auto& v) { return AllRunning(v, 2); });
  ASSERT_TRUE(AllRunning(in, 2)) << Describe(in);
  EXPECT_EQ(in[0].id, s.ref.deployment_id + "-0");

  const std::string selector = "-l slipway.dev/deployment=" + s.ref.deployment_id;
  ASSERT_EQ(testing::KubectlJson("-n " + RunId() + " get pods " + selector)["items"].size(), 2u);
  auto deleted = b->DeleteDeployment(s.ref);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(*deleted, 2);
  for (const char* kind : {"statefulsets", "services", "pods"}) {
    Json list = testing::KubectlJson("-n " + RunId() + " get " + kind + " " + selector);
    ASSERT_TRUE(list.is_object()) << kind;
    EXPECT_TRUE(list["items"].empty()) << kind << " left: " << list["items"].dump();
  }
  auto gone = b->GetDeployment(s.ref);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), Code::kNotFound);
  auto twice = b->DeleteDeployment(s.ref);
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(*twice, 0);
}

TEST_F(KubernetesBackendTest, TheWatchSurvivesAnApiServerRestart) {
  auto backend = Make(KwokConfig());
  auto* view = dynamic_cast<kubernetes::KubernetesBackendView*>(backend.get());
  ASSERT_NE(view, nullptr);
  DeploymentSpec a = Spec("before", images_->hello, 1);
  ASSERT_TRUE(backend->CreateDeployment(a).ok());
  ASSERT_TRUE(
      AllRunning(WaitFor(*backend, a.ref, 60s, [](auto& v) { return AllRunning(v, 1); }), 1));
  const kubernetes::WatchCounters before = view->PodWatchCounters(RunId());
  ASSERT_TRUE(before.synced);

  auto restarted = testing::RunCommand(
      "'" + (testing::SourceDir() / "scripts/kubernetes.sh").string() + "' restart-apiserver 2>&1");
  ASSERT_EQ(restarted.exit_code, 0) << restarted.output;

  // The old deployment is still known, and a new deployment's pods reach krane through the
  // resumed watch.
  auto still = backend->GetDeployment(a.ref);
  ASSERT_TRUE(still.ok()) << still.status().ToString();
  EXPECT_TRUE(AllRunning(*still, 1)) << Describe(*still);
  DeploymentSpec b = Spec("after", images_->hello, 2);
  Result<std::vector<Instance>> created = Status::Unavailable("not tried");
  for (int i = 0; i < 50 && !created.ok(); ++i) {
    created = backend->CreateDeployment(b);
    if (!created.ok()) std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto in = WaitFor(*backend, b.ref, 60s, [](auto& v) { return AllRunning(v, 2); });
  EXPECT_TRUE(AllRunning(in, 2)) << Describe(in);
  const kubernetes::WatchCounters after = view->PodWatchCounters(RunId());
  EXPECT_TRUE(after.synced);
  EXPECT_GT(after.resumes + after.lists, before.resumes + before.lists)
      << "the watch never reconnected: " << after.last_error;
  EXPECT_GT(after.events, before.events);
  ASSERT_TRUE(backend->DeleteDeployment(a.ref).ok());
  ASSERT_TRUE(backend->DeleteDeployment(b.ref).ok());
}

TEST_F(KubernetesBackendTest, FiftyDeploymentsOfTwoReplicasOnKwokAllRun) {
  auto b = Make(KwokConfig());
  constexpr int kDeployments = 50;
  std::vector<DeploymentSpec> specs;
  for (int i = 0; i < kDeployments; ++i)
    specs.push_back(Spec("many-" + std::to_string(i), images_->hello, 2));
  std::atomic<int> next{0}, failures{0};
  auto worker = [&] {
    for (int i; (i = next++) < kDeployments;) {
      auto r = b->CreateDeployment(specs[i]);
      if (!r.ok()) {
        ++failures;
        ADD_FAILURE() << r.status().ToString();
      }
    }
  };
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures, 0);
  int running = 0;
  const auto deadline = Clock::now() + 180s;
  while (Clock::now() < deadline) {
    running = 0;
    for (const auto& s : specs) {
      auto in = b->GetDeployment(s.ref);
      if (in.ok() && AllRunning(*in, 2)) ++running;
    }
    if (running == kDeployments) break;
    std::this_thread::sleep_for(500ms);
  }
  EXPECT_EQ(running, kDeployments);
  std::cerr << "50 deployments x 2 replicas RUNNING after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()
            << " ms\n";
  next = 0;
  std::vector<std::thread> deleters;
  for (int t = 0; t < 4; ++t) {
    deleters.emplace_back([&] {
      for (int i; (i = next++) < kDeployments;) EXPECT_TRUE(b->DeleteDeployment(specs[i].ref).ok());
    });
  }
  for (auto& t : deleters) t.join();
}

TEST_F(KubernetesBackendTest, TheRbacManifestIsEnoughAndAMissingRuleIsNamed) {
  const auto manifest = testing::SourceDir() / "deploy/kubernetes/rbac.yaml";
  auto applied = testing::Kubectl("apply -f '" + manifest.string() + "'");
  ASSERT_EQ(applied.exit_code, 0) << applied.output;
  auto token = testing::Kubectl("-n slipway create token slipway-krane --duration 1h");
  ASSERT_EQ(token.exit_code, 0) << token.output;
  std::string t = token.output;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  testing::TempDir dir;
  Json admin = testing::KubectlJson("config view --raw --minify");
  ASSERT_TRUE(admin.is_object());
  const std::string server = admin["clusters"][0]["cluster"]["server"];
  const std::string ca = admin["clusters"][0]["cluster"]["certificate-authority"];
  std::ofstream(dir.path() / "kubeconfig")
      << "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: " << server
      << "\n    certificate-authority: " << ca
      << "\nusers:\n- name: krane\n  user:\n    token: " << t
      << "\ncontexts:\n- name: k\n  context: {cluster: c, user: krane, namespace: "
         "slipway}\ncurrent-context: k\n";
  KraneBackendConfig c = KwokConfig();
  c.kubeconfig = (dir.path() / "kubeconfig").string();
  c.kube_namespace = "";  // the context's: slipway
  auto b = Make(c);
  DeploymentSpec s = Spec("rbac", images_->hello, 1);
  auto created = b->CreateDeployment(s);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto in = WaitFor(*b, s.ref, 60s, [](auto& v) { return AllRunning(v, 1); });
  EXPECT_TRUE(AllRunning(in, 1)) << Describe(in);
  auto deleted = b->DeleteDeployment(s.ref);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();

  // The same account in a namespace its Role does not cover.
  c.kube_namespace = RunId();
  auto outside = Make(c);
  auto refused = outside->CreateDeployment(Spec("rbac-out", images_->hello, 1));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("resources: [\""), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("verbs: [\""), std::string::npos);
  EXPECT_NE(refused.status().message().find(RunId()), std::string::npos);
}

TEST_F(KubernetesBackendTest, ErrorsAreSentences) {
  // An invalid object names the field the API server refused.
  auto b = Make(KwokConfig());
  DeploymentSpec s = Spec("invalid", images_->hello, 1);
  s.port = 70000;  // krane's service refuses this; the backend alone sends it
  auto invalid = b->CreateDeployment(s);
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.status().code(), Code::kInvalidArgument) << invalid.status().ToString();
  EXPECT_NE(invalid.status().message().find("spec.ports[0].port: Invalid value: 70000"),
            std::string::npos)
      << invalid.status().message();
  b->DeleteDeployment(s.ref);

  // An API server that does not answer is Unavailable (transient), naming the address.
  testing::TempDir dir;
  const int port = testing::FreePort();
  std::ofstream(dir.path() / "kubeconfig")
      << "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: "
         "'https://127.0.0.1:"
      << port
      << "'}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: k\n  context: {cluster: c, "
         "user: u}\ncurrent-context: k\n";
  KraneBackendConfig c = KwokConfig();
  c.kubeconfig = (dir.path() / "kubeconfig").string();
  auto down = Make(c);
  auto unreachable = down->CreateDeployment(Spec("down", images_->hello, 1));
  ASSERT_FALSE(unreachable.ok());
  EXPECT_EQ(unreachable.status().code(), Code::kUnavailable) << unreachable.status().ToString();
  EXPECT_NE(unreachable.status().message().find("127.0.0.1:" + std::to_string(port)),
            std::string::npos);
}

}  // namespace
}  // namespace slipway::krane

namespace slipway::krane {
namespace {

TEST_F(KubernetesBackendTest, NamespacePerWorkspaceCreatesTheNamespaceOnFirstUse) {
  KraneBackendConfig c = KwokConfig();
  c.namespace_per_workspace = true;
  auto b = Make(c);
  DeploymentSpec s = Spec("ws", images_->hello, 2);
  s.ref.ns = "Team_" + RunId();  // not a DNS-1123 label as given
  const std::string ns = dynamic_cast<kubernetes::KubernetesBackendView&>(*b).NamespaceOf(s.ref);
  EXPECT_NE(ns, RunId());
  ASSERT_FALSE(testing::KubectlJson("get namespace " + ns).is_object()) << "exists already";
  auto created = b->CreateDeployment(s);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_TRUE(testing::KubectlJson("get namespace " + ns).is_object());
  auto in = WaitFor(*b, s.ref, 60s, [](auto& v) { return AllRunning(v, 2); });
  EXPECT_TRUE(AllRunning(in, 2)) << Describe(in);
  Json sts = testing::KubectlJson("-n " + ns + " get statefulset " +
                                  kubernetes::ObjectName(s.ref.deployment_id));
  ASSERT_TRUE(sts.is_object());
  EXPECT_EQ(sts["metadata"]["labels"]["slipway.dev/workspace"], s.ref.ns);
  ASSERT_TRUE(b->DeleteDeployment(s.ref).ok());
  testing::Kubectl("delete namespace " + ns + " --wait=false");
}

}  // namespace
}  // namespace slipway::krane
