// The Kubernetes krane backend: per deployment a headless Service and a StatefulSet in the
// namespace krane is given (KRANE_NAMESPACE), or in one namespace per workspace
// (KRANE_NAMESPACE_PER_WORKSPACE, created on first use), over the API server's REST API.
//
// Objects are named by ObjectName(deployment id) and labelled (objects.h), so every answer is
// rebuilt from the cluster: krane keeps no state of its own, and a restarted krane finds its
// objects again. Instances are the StatefulSet's pods, read from an in-memory copy kept by a
// watch per namespace (resource_watch.h): RUNNING only when the pod's Ready condition is True,
// FAILED at once for an exit, an OOM kill, an image that cannot be pulled or a pod the
// scheduler cannot place (with the container's log tail where there is one).
//
// Addresses: "<pod>.<service>.<namespace>.svc.<cluster domain>:<port>" (KRANE_ADDRESS=dns) or
// "<pod IP>:<port>" (pod-ip, the default with host networking, where the pod IP is the node's).
// With host networking (KRANE_HOST_NETWORK) and no port in the spec, krane picks a free loopback
// port per deployment; otherwise the app listens on the spec's port, else 8080.
#pragma once

#include <chrono>
#include <memory>

#include "base/status.h"
#include "krane/backend.h"
#include "krane/kubernetes/resource_watch.h"

namespace slipway::krane::kubernetes {

inline constexpr int kDefaultPodPort = 8080;

// What tests and krane's streaming read beyond KraneBackend.
class KubernetesBackendView {
 public:
  virtual ~KubernetesBackendView() = default;
  // The namespace a deployment's objects live in.
  virtual std::string NamespaceOf(const DeploymentRef& ref) const = 0;
  // The pod watch of that namespace (started if it was not).
  virtual WatchCounters PodWatchCounters(const std::string& ns) = 0;
  // Blocks until anything krane knows about pods in ns changes after version seen.
  virtual uint64_t WaitForPodChange(const std::string& ns, uint64_t seen,
                                    std::chrono::milliseconds timeout) = 0;
};

// Reads the connection (kubeconfig or in-cluster) and checks the settings; does not contact
// the API server, so krane starts while it is down (calls are then Unavailable).
Result<std::unique_ptr<KraneBackend>> MakeKubernetesBackend(const KraneBackendConfig& config);

}  // namespace slipway::krane::kubernetes
