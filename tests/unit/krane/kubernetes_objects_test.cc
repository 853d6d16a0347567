// The kubernetes backend's pure parts: object names from deployment ids, the manifests krane
// sends, the verdict on recorded pod statuses, and reading a kubeconfig.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "krane/kubernetes/kube_config.h"
#include "krane/kubernetes/objects.h"
#include "support/test_support.h"

namespace slipway::krane::kubernetes {
namespace {

using Json = nlohmann::json;

bool IsDns1123Label(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return s.front() != '-' && s.back() != '-';
}

TEST(KubernetesNamesTest, ValidIdsAreUsedAsIs) {
  EXPECT_EQ(ObjectName("web-1"), "web-1");
  EXPECT_EQ(ObjectName("a"), "a");
}

TEST(KubernetesNamesTest, OtherIdsBecomeLowercaseLabelsWithADigest) {
  for (const std::string& id : std::vector<std::string>{"Web-App", "web_app", "0abc",
                                                        std::string(63, 'x'), "A_b-C", "-x"}) {
    const std::string name = ObjectName(id);
    EXPECT_TRUE(IsDns1123Label(name)) << id << " -> " << name;
    EXPECT_LE(name.size(), 52u) << id;
    EXPECT_TRUE(name[0] >= 'a' && name[0] <= 'z') << id << " -> " << name;
    EXPECT_EQ(name, ObjectName(id)) << "deterministic";
  }
  EXPECT_NE(ObjectName("App"), ObjectName("app"));
  EXPECT_NE(ObjectName("a_b"), ObjectName("a-b"));
  EXPECT_EQ(ObjectName("Web-App").rfind("web-app-", 0), 0u) << ObjectName("Web-App");
}

TEST(KubernetesNamesTest, LabelValuesStayValid) {
  EXPECT_EQ(LabelValue("Web_App"), "Web_App");
  EXPECT_NE(LabelValue("ends-"), "ends-");
  EXPECT_EQ(WorkspaceNamespace("team-a"), "team-a");
  EXPECT_TRUE(IsDns1123Label(WorkspaceNamespace("Team_A")));
}

TEST(KubernetesNamesTest, PodOrdinals) {
  EXPECT_EQ(PodOrdinal("web-0", "web"), 0);
  EXPECT_EQ(PodOrdinal("web-12", "web"), 12);
  EXPECT_EQ(PodOrdinal("web-x", "web"), -1);
  EXPECT_EQ(PodOrdinal("webb-1", "web"), -1);
}

DeploymentSpec Spec() {
  DeploymentSpec s;
  s.ref = {"team", "Api_Server"};
  s.image = "127.0.0.1:5000/api:1";
  s.replicas = 3;
  s.cpu_millicores = 250;
  s.memory_mib = 128;
  s.env = {{"MODE", "prod"}, {"PORT", "1"}};
  s.health_check_path = "/healthz";
  return s;
}

TEST(KubernetesManifestTest, StatefulSetCarriesTheSpec) {
  PodSettings settings;
  settings.host_network = true;
  settings.tolerations = {{"kwok.x-k8s.io/node", "fake", "NoSchedule"}};
  settings.node_selector = {{"type", "kwok"}};
  const Json sts = StatefulSetManifest(Spec(), "ns1", 4100, settings);
  EXPECT_EQ(sts["metadata"]["name"], ObjectName("Api_Server"));
  EXPECT_EQ(sts["spec"]["replicas"], 3);
  EXPECT_EQ(sts["spec"]["serviceName"], ObjectName("Api_Server"));
  const Json& c = sts["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["resources"]["requests"], c["resources"]["limits"]);
  EXPECT_EQ(c["resources"]["limits"]["cpu"], "250m");
  EXPECT_EQ(c["resources"]["limits"]["memory"], "128Mi");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/healthz");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["port"], 4100);
  Json port_env;
  for (const Json& e : c["env"]) {
    if (e["name"] == "PORT") port_env = e;
  }
  EXPECT_EQ(port_env["value"], "4100") << "krane's port wins over the spec's PORT";
  EXPECT_EQ(sts["spec"]["template"]["spec"]["hostNetwork"], true);
  EXPECT_EQ(sts["spec"]["template"]["spec"]["nodeSelector"]["type"], "kwok");
  EXPECT_EQ(sts["spec"]["template"]["metadata"]["labels"][kLabelDeployment], "Api_Server");
  EXPECT_EQ(sts["spec"]["selector"]["matchLabels"][kLabelManagedBy], kManagedByValue);
  EXPECT_EQ(sts["metadata"]["annotations"][kAnnotationSpecDigest], SpecDigest(sts));

  DeploymentSpec tcp = Spec();
  tcp.health_check_path.clear();
  const Json tcp_sts = StatefulSetManifest(tcp, "ns1", 4100, PodSettings{});
  const Json& probe = tcp_sts["spec"]["template"]["spec"]["containers"][0]["readinessProbe"];
  EXPECT_EQ(probe["tcpSocket"]["port"], 4100);
  EXPECT_FALSE(probe.contains("httpGet"));
  EXPECT_NE(tcp_sts["metadata"]["annotations"][kAnnotationSpecDigest],
            sts["metadata"]["annotations"][kAnnotationSpecDigest]);
}

TEST(KubernetesManifestTest, ServiceIsHeadless) {
  const Json svc = ServiceManifest(Spec(), "ns1", 4100);
  EXPECT_EQ(svc["spec"]["clusterIP"], "None");
  EXPECT_EQ(svc["spec"]["publishNotReadyAddresses"], true);
  EXPECT_EQ(svc["spec"]["ports"][0]["port"], 4100);
  EXPECT_EQ(svc["spec"]["selector"][kLabelDeployment], "Api_Server");
}

TEST(KubernetesSettingsTest, ParsesSelectorsAndTolerations) {
  auto sel = ParseNodeSelector("type=kwok,zone=a");
  ASSERT_TRUE(sel.ok());
  EXPECT_EQ((*sel)["zone"], "a");
  EXPECT_FALSE(ParseNodeSelector("nokey").ok());
  auto tol = ParseTolerations("kwok.x-k8s.io/node=fake:NoSchedule,gpu:NoExecute");
  ASSERT_TRUE(tol.ok());
  ASSERT_EQ(tol->size(), 2u);
  EXPECT_EQ((*tol)[0].value, "fake");
  EXPECT_EQ((*tol)[1].key, "gpu");
  EXPECT_TRUE((*tol)[1].value.empty());
  EXPECT_FALSE(ParseTolerations("a=b:Sometimes").ok());
}

Json Pod(Json status) {
  return {{"metadata", {{"name", "web-0"}, {"uid", "u1"}}}, {"status", std::move(status)}};
}

TEST(KubernetesPodVerdictTest, RunningOnlyWhenReady) {
  Json ready =
      Pod({{"phase", "Running"},
           {"conditions", {{{"type", "Ready"}, {"status", "True"}}}},
           {"containerStatuses", {{{"ready", true}, {"state", {{"running", Json::object()}}}}}}});
  EXPECT_EQ(JudgePod(ready).status, InstanceStatus::kRunning);
  Json started =
      Pod({{"phase", "Running"},
           {"conditions", {{{"type", "Ready"}, {"status", "False"}}}},
           {"containerStatuses", {{{"ready", false}, {"state", {{"running", Json::object()}}}}}}});
  PodVerdict v = JudgePod(started);
  EXPECT_EQ(v.status, InstanceStatus::kPending);
  EXPECT_NE(v.reason.find("readiness probe"), std::string::npos) << v.reason;
}

TEST(KubernetesPodVerdictTest, CrashLoopIsFailedWithExitCode) {
  Json pod = Pod({{"phase", "Running"},
                  {"containerStatuses",
                   {{{"restartCount", 2},
                     {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}}}}},
                     {"lastState", {{"terminated", {{"exitCode", 3}, {"reason", "Error"}}}}}}}}});
  PodVerdict v = JudgePod(pod);
  EXPECT_EQ(v.status, InstanceStatus::kFailed);
  EXPECT_NE(v.reason.find("CrashLoopBackOff"), std::string::npos) << v.reason;
  EXPECT_NE(v.reason.find("exit code 3"), std::string::npos) << v.reason;
  EXPECT_TRUE(v.wants_log);
  EXPECT_TRUE(v.previous_log);
}

TEST(KubernetesPodVerdictTest, OomImagePullAndUnschedulable) {
  Json oom = Pod({{"containerStatuses",
                   {{{"state", {{"terminated", {{"exitCode", 137}, {"reason", "OOMKilled"}}}}}}}}});
  EXPECT_NE(JudgePod(oom).reason.find("OOMKilled"), std::string::npos);
  Json pull = Pod(
      {{"phase", "Pending"},
       {"containerStatuses",
        {{{"image", "nope:1"},
          {"state", {{"waiting", {{"reason", "ImagePullBackOff"}, {"message", "Back-off"}}}}}}}}});
  PodVerdict p = JudgePod(pull);
  EXPECT_EQ(p.status, InstanceStatus::kFailed);
  EXPECT_NE(p.reason.find("ImagePullBackOff"), std::string::npos);
  Json unsched = Pod({{"phase", "Pending"},
                      {"conditions",
                       {{{"type", "PodScheduled"},
                         {"status", "False"},
                         {"reason", "Unschedulable"},
                         {"message", "0/1 nodes are available: 1 Insufficient memory."}}}}});
  PodVerdict u = JudgePod(unsched);
  EXPECT_EQ(u.status, InstanceStatus::kFailed);
  EXPECT_NE(u.reason.find("Insufficient memory"), std::string::npos) << u.reason;
  Json deleting = Pod({{"phase", "Running"}});
  deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  EXPECT_EQ(JudgePod(deleting).status, InstanceStatus::kTerminating);
}

TEST(KubeconfigTest, ReadsTheCurrentContextWithInlineAndFileCredentials) {
  testing::TempDir dir;
  std::ofstream(dir.path() / "ca.crt") << "CA";
  std::ofstream(dir.path() / "config") << R"(apiVersion: v1
kind: Config
clusters:
- name: other
  cluster: {server: https://10.1.1.1:6443}
- name: test
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority: ca.crt
users:
- name: admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
- name: robot
  user: {token: abc123}
contexts:
- name: a
  context: {cluster: test, user: admin, namespace: apps}
- name: b
  context: {cluster: test, user: robot}
current-context: a
)";
  auto c = LoadKubeconfig((dir.path() / "config").string());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  EXPECT_EQ(c->ca_file, (dir.path() / "ca.crt").string());
  EXPECT_EQ(c->default_namespace, "apps");
  EXPECT_EQ(testing::ReadFile(c->client_cert_file), "CERT");
  EXPECT_EQ(testing::ReadFile(c->client_key_file), "KEY");

  std::ofstream(dir.path() / "bad") << "current-context: missing\ncontexts: []\n";
  auto bad = LoadKubeconfig((dir.path() / "bad").string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("missing"), std::string::npos);
  auto none = LoadKubeconfig((dir.path() / "nope").string());
  EXPECT_NE(none.status().message().find("--kubeconfig"), std::string::npos);
}

TEST(KubeconfigTest, InClusterNeedsTheServiceHost) {
  testing::TempDir dir;
  std::ofstream(dir.path() / "token") << "tok\n";
  std::ofstream(dir.path() / "namespace") << "prod";
  ::setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
  auto c = LoadInClusterConnection(dir.str());
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  EXPECT_EQ(c->default_namespace, "prod");
  EXPECT_EQ(c->token_file, (dir.path() / "token").string());
  EXPECT_FALSE(LoadInClusterConnection(dir.str()).ok());
}

}  // namespace
}  // namespace slipway::krane::kubernetes
