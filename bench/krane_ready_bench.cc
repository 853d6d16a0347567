// Time from CreateDeployment to all instances RUNNING, for the same app, in the same run, on the
// docker backend (local dockerd, host networking) and on the kubernetes backend (the real
// kubelet of scripts/kubernetes.sh, host networking; readiness from the pod's Ready condition,
// which the kubelet sets from the readiness probe). Rounds alternate between the backends so a
// busy moment of the machine hits both. Prints each round, the medians and their ratio.
//
// Usage: krane_ready_bench [ROUNDS]   (default 5). Needs scripts/services.sh dockerd registry
// base-images kubernetes.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "krane/backend.h"
#include "support/kubernetes_cluster.h"
#include "support/test_support.h"

namespace {

using namespace slipway;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Milliseconds from Create to every instance RUNNING, or -1 (with the reason printed).
double TimeToReady(krane::KraneBackend& backend, const krane::DeploymentSpec& spec) {
  const auto start = Clock::now();
  auto created = backend.CreateDeployment(spec);
  if (!created.ok()) {
    std::fprintf(stderr, "%s: create failed: %s\n", std::string(backend.name()).c_str(),
                 created.status().ToString().c_str());
    return -1;
  }
  while (Clock::now() - start < 60s) {
    auto got = backend.GetDeployment(spec.ref);
    if (got.ok() && static_cast<int>(got->size()) == spec.replicas &&
        std::all_of(got->begin(), got->end(), [](const krane::Instance& i) {
          return i.status == krane::InstanceStatus::kRunning;
        })) {
      return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    }
    if (got.ok() && !got->empty() && got->front().status == krane::InstanceStatus::kFailed) {
      std::fprintf(stderr, "%s: failed: %s\n", std::string(backend.name()).c_str(),
                   got->front().reason.c_str());
      return -1;
    }
    std::this_thread::sleep_for(10ms);
  }
  return -1;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  const std::string problem = testing::KubernetesClusterProblem();
  if (!problem.empty()) {
    std::fprintf(stderr, "%s\n", problem.c_str());
    return 1;
  }
  std::string error;
  const std::string image = testing::BuildAndPushImage(
      "slipway-bench/k8s-hello:1",
      R"(CMD ["/bin/busybox","sh","-c","exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www"])",
      &error);
  if (image.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  const std::string ns = "kb" + std::to_string(::getpid());
  testing::Kubectl("create namespace " + ns);

  krane::KraneBackendConfig docker_config;
  krane::KraneBackendConfig kube_config;
  kube_config.backend = "kubernetes";
  kube_config.kubeconfig = testing::TestKubeconfig();
  kube_config.kube_namespace = ns;
  kube_config.host_network = true;
  kube_config.termination_grace_seconds = 1;
  auto docker = krane::MakeKraneBackend(docker_config);
  auto kube = krane::MakeKraneBackend(kube_config);
  if (!docker.ok() || !kube.ok()) {
    std::fprintf(stderr, "cannot make the backends: %s %s\n", docker.status().ToString().c_str(),
                 kube.status().ToString().c_str());
    return 1;
  }
  std::vector<double> docker_ms, kube_ms;
  for (int r = 0; r < rounds; ++r) {
    for (auto* backend : {docker->get(), kube->get()}) {
      krane::DeploymentSpec spec;
      spec.ref = {ns, ns + "-" + std::string(backend->name()) + "-" + std::to_string(r)};
      spec.image = image;
      spec.replicas = 1;
      spec.cpu_millicores = 200;
      spec.memory_mib = 64;
      spec.health_check_path = "/index.html";
      const double ms = TimeToReady(*backend, spec);
      std::printf("round %d  %-10s %8.0f ms\n", r + 1, std::string(backend->name()).c_str(), ms);
      (backend == docker->get() ? docker_ms : kube_ms).push_back(ms);
      (void)backend->DeleteDeployment(spec.ref);
    }
  }
  testing::Kubectl("delete namespace " + ns + " --wait=false");
  const double d = Median(docker_ms), k = Median(kube_ms);
  std::printf("\nCreateDeployment -> all RUNNING, median of %d (1 replica, HTTP readiness):\n",
              rounds);
  std::printf("  docker backend      %8.0f ms\n  kubernetes backend  %8.0f ms (real kubelet)\n", d,
              k);
  std::printf("  ratio kubernetes/docker: %.2f\n", d > 0 ? k / d : 0.0);
  return 0;
}
