// The crash sweep on the kubernetes krane backend, against the test cluster's kwok nodes: 8
// deployments of two replicas, ctrl SIGKILLed once in each, each kill aimed at another moment:
// the create, the schedule (krane creating the StatefulSet and Service), the wait for the pods'
// Ready condition, the scrape and the routing, at their start and 40 ms into them. Expected: all 8 READY, each with exactly
// one StatefulSet, one Service and two pods. Why: the schedule step's CreateDeployment is
// idempotent on the API server (an existing identical object is success), and the wait reads
// the pods again after a restart, so a resumed run neither doubles nor loses an object.
#include <gtest/gtest.h>

#include <iostream>

#include "integration/faults/crash_sweep.h"
#include "support/kubernetes_cluster.h"

namespace slipway::faults {
namespace {

std::string Namespace() {
  static const std::string ns = "ks" + std::to_string(::getpid());
  return ns;
}

int Count(const std::string& kind, const std::string& id) {
  auto list = testing::KubectlJson("-n " + Namespace() + " get " + kind +
                                   " -l slipway.dev/deployment=" + id);
  return list.is_object() ? static_cast<int>(list["items"].size()) : -1;
}

TEST(KubernetesCrashSweepTest, CtrlKilledOnceInEachOf8DeploysAtEveryStepAllEndReady) {
  const std::string problem = testing::KubernetesClusterProblem();
  ASSERT_TRUE(problem.empty()) << problem;
  testing::Kubectl("create namespace " + Namespace());
  FaultStack stack(nullptr);
  stack.SetKraneEnv({{"KRANE_BACKEND", "kubernetes"},
                     {"KUBECONFIG", testing::TestKubeconfig()},
                     {"KRANE_NAMESPACE", Namespace()},
                     {"KRANE_NODE_SELECTOR", "type=kwok"},
                     {"KRANE_TOLERATIONS", "kwok.x-k8s.io/node=fake:NoSchedule"},
                     {"KRANE_ADDRESS", "pod-ip"},
                     {"KRANE_TERMINATION_GRACE_SECONDS", "1"}});
  stack.StartS3();
  stack.StartKrane();
  stack.StartCtrl(0, /*issue_token=*/true);
  stack.StartGateway();
  std::vector<std::string> ids;
  SweepOptions o;
  o.kills = 8;
  o.replicas = 2;
  o.steps = {"created", "schedule", "wait", "openapi", "route"};  // an image: no build
  // kwok runs no container: any image reference makes pods that become Ready.
  o.deploy = [&](dt::CtrlClient& client, int k) {
    auto id = client.DeployImage("ksweep-" + std::to_string(k), "127.0.0.1:5000/slipway/busybox:1", 2);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(id.ok() ? *id : "");
    return ids.back();
  };
  o.running_instances = [](const std::string& id) {
    EXPECT_EQ(Count("statefulsets", id), 1) << id << ": one StatefulSet";
    EXPECT_EQ(Count("services", id), 1) << id << ": one Service";
    auto pods = testing::KubectlJson("-n " + Namespace() + " get pods -l slipway.dev/deployment=" + id);
    int ready = 0;
    if (pods.is_object()) {
      for (const auto& pod : pods["items"]) {
        for (const auto& c : pod["status"].value("conditions", nlohmann::json::array())) {
          if (c.value("type", "") == "Ready" && c.value("status", "") == "True") ++ready;
        }
      }
    }
    return ready;
  };
  auto kills_at = RunCrashSweep(stack, o);
  std::cout << "[ sweep    ] " << SweepReport(kills_at) << "\n";
  RecordProperty("kills_at", SweepReport(kills_at));
  testing::Kubectl("delete namespace " + Namespace() + " --wait=false");
}

}  // namespace
}  // namespace slipway::faults
