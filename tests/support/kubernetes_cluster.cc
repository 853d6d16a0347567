#include "support/kubernetes_cluster.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace slipway::testing {

std::string TestKubeconfig() {
  if (const char* k = std::getenv("SLIPWAY_KUBECONFIG"); k != nullptr && *k != '\0') return k;
  return "/var/lib/slipway-kubernetes/kubeconfig";
}

namespace {
std::string KubeBin() {
  static const std::string bin = [] {
    CommandResult r = RunCommand("'" + (SourceDir() / "scripts/kubernetes.sh").string() + "' bin");
    std::string out = r.output;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
  }();
  return bin;
}
}  // namespace

CommandResult Kubectl(const std::string& args) {
  return RunCommand("'" + KubeBin() + "/kubectl' --kubeconfig '" + TestKubeconfig() + "' " + args +
                    " 2>&1");
}

nlohmann::json KubectlJson(const std::string& args) {
  CommandResult r = RunCommand("'" + KubeBin() + "/kubectl' --kubeconfig '" + TestKubeconfig() +
                               "' " + args + " -o json 2>/dev/null");
  if (r.exit_code != 0) return nullptr;
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  return j.is_discarded() ? nlohmann::json() : j;
}

std::string KubernetesClusterProblem() {
  if (!std::filesystem::exists(TestKubeconfig())) {
    return "the test cluster's kubeconfig " + TestKubeconfig() +
           " does not exist: start the cluster with `scripts/services.sh kubernetes` (the "
           "first run builds it, about 18 minutes)";
  }
  CommandResult r = Kubectl("get --raw /readyz");
  if (r.exit_code != 0 || r.output.find("ok") == std::string::npos) {
    return "the test cluster's API server does not answer (" + r.output +
           "): start it with `scripts/services.sh kubernetes`";
  }
  return "";
}

std::string BuildAndPushImage(const std::string& name, const std::string& dockerfile_tail,
                              std::string* error) {
  TempDir dir;
  std::filesystem::copy_file("/bin/busybox", dir.path() / "busybox");
  std::filesystem::create_directories(dir.path() / "www");
  std::ofstream(dir.path() / "www" / "index.html") << "hello from kubernetes\n";
  std::ofstream(dir.path() / "Dockerfile")
      << "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n"
      << dockerfile_tail << "\n";
  const std::string ref = "127.0.0.1:5000/" + name;
  CommandResult built =
      RunCommand("tar -C '" + dir.str() + "' -c . | /usr/bin/docker build -q --no-cache -t " + ref +
                 " - && /usr/bin/docker push -q " + ref + " 2>&1");
  if (built.exit_code != 0) {
    if (error) *error = "building and pushing " + ref + ": " + built.output;
    return "";
  }
  return ref;
}

}  // namespace slipway::testing
