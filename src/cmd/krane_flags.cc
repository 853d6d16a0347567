#include <CLI/CLI.hpp>

#include "cmd/commands.h"
#include "krane/backend.h"

namespace slipway::cmd {

void AddDockerKraneFlags(CLI::App& cmd, krane::KraneBackendConfig& c, const std::string& prefix) {
  const std::string size_flag = "--" + prefix + "log-max-size";
  cmd.add_option_function<std::string>(
         size_flag,
         [&c, size_flag](const std::string& text) {
           uint64_t bytes = 0;
           std::string error = ParseSize(text, &bytes);
           if (error.empty() && bytes < 4096) error = "use at least 4KiB";
           if (!error.empty()) throw CLI::ValidationError(size_flag, error);
           c.log_max_bytes = bytes;
         },
         "docker backend: an instance's log file is rotated at this size (json-file max-size), "
         "so an app that floods its log cannot fill the disk; default 10MiB")
      ->envname("KRANE_LOG_MAX_SIZE");
  cmd.add_option("--" + prefix + "log-max-files", c.log_max_files,
                 "docker backend: log files kept per instance, the current one included "
                 "(json-file max-file): at most this many times the max size on disk")
      ->envname("KRANE_LOG_MAX_FILES")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
}

void AddKubernetesKraneFlags(CLI::App& cmd, krane::KraneBackendConfig& c,
                             const std::string& prefix) {
  auto flag = [&](const std::string& name) { return "--" + prefix + name; };
  cmd.add_option("--kubeconfig", c.kubeconfig,
                 "kubernetes backend: the kubeconfig whose current context krane uses (empty: "
                 "the pod's service account inside a cluster, else ~/.kube/config)")
      ->envname("KUBECONFIG");
  cmd.add_option(flag("namespace"), c.kube_namespace,
                 "kubernetes backend: the namespace deployments go to (empty: the context's, "
                 "else default)")
      ->envname("KRANE_NAMESPACE");
  cmd.add_option(flag("namespace-per-workspace"), c.namespace_per_workspace,
                 "kubernetes backend: one namespace per workspace, created on first use")
      ->envname("KRANE_NAMESPACE_PER_WORKSPACE")
      ->capture_default_str();
  cmd.add_option(flag("host-network"), c.host_network,
                 "kubernetes backend: pods share their node's network (machines without a pod "
                 "network); krane then picks a free loopback port per deployment")
      ->envname("KRANE_HOST_NETWORK")
      ->capture_default_str();
  cmd.add_option(flag("address"), c.address_mode,
                 "kubernetes backend: instance addresses, dns (<pod>.<service>.<ns>.svc.<domain>) "
                 "or pod-ip (empty: pod-ip with host networking, else dns)")
      ->envname("KRANE_ADDRESS")
      ->check(CLI::IsMember({"", "dns", "pod-ip"}));
  cmd.add_option(flag("cluster-domain"), c.cluster_domain,
                 "kubernetes backend: the cluster's DNS domain, for dns addresses")
      ->envname("KRANE_CLUSTER_DOMAIN")
      ->capture_default_str();
  cmd.add_option(flag("node-selector"), c.node_selector,
                 "kubernetes backend: node labels every pod requires, key=value,...")
      ->envname("KRANE_NODE_SELECTOR");
  cmd.add_option(flag("tolerations"), c.tolerations,
                 "kubernetes backend: taints every pod tolerates, key=value:Effect,...")
      ->envname("KRANE_TOLERATIONS");
  cmd.add_option(flag("image-pull-secret"), c.image_pull_secret,
                 "kubernetes backend: the Secret (kubernetes.io/dockerconfigjson) pods pull "
                 "images with")
      ->envname("KRANE_IMAGE_PULL_SECRET");
  cmd.add_option(flag("termination-grace-seconds"), c.termination_grace_seconds,
                 "kubernetes backend: how long a pod may take to stop before it is killed")
      ->envname("KRANE_TERMINATION_GRACE_SECONDS")
      ->capture_default_str();
}

}  // namespace slipway::cmd
