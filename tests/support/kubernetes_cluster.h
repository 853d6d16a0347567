// The test cluster scripts/kubernetes.sh runs (etcd, API server, controllers, a real kubelet on
// containerd, kwok's fake nodes): where its kubeconfig is, kubectl against it, and images
// pushed to the local registry the kubelet pulls from.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "support/test_support.h"

namespace slipway::testing {

// $SLIPWAY_KUBECONFIG, else the file scripts/kubernetes.sh writes.
std::string TestKubeconfig();

// Empty when the API server answers /readyz with the kubeconfig; else why not, with the
// command that starts the cluster.
std::string KubernetesClusterProblem();

// kubectl (the one scripts/kubernetes.sh built) with the test kubeconfig.
CommandResult Kubectl(const std::string& args);
// kubectl ... -o json, parsed (null on failure).
nlohmann::json KubectlJson(const std::string& args);

// Builds the Dockerfile text over a FROM scratch context holding /bin/busybox and /www, tags
// it 127.0.0.1:5000/<name> and pushes it; returns the reference, or empty with the reason in
// *error.
std::string BuildAndPushImage(const std::string& name, const std::string& dockerfile_tail,
                              std::string* error);

}  // namespace slipway::testing
