// Where the Kubernetes API server is and how krane proves who it is: from a kubeconfig file
// (its current context: server, CA, client certificate and key or bearer token) or from inside
// a pod (the service account's token and CA, KUBERNETES_SERVICE_HOST/PORT).
//
// Certificates given inline in a kubeconfig (*-data fields) are written to files in a private
// directory (0700) so libcurl can read them; the directory lives as long as the process.
#pragma once

#include <string>

#include "base/status.h"

namespace slipway::krane::kubernetes {

struct KubeConnection {
  std::string server;   // "https://127.0.0.1:6443", no trailing slash
  std::string ca_file;  // empty: the system's CAs
  std::string client_cert_file;
  std::string client_key_file;
  std::string token;       // a static bearer token
  std::string token_file;  // re-read on every request (service account tokens rotate)
  bool insecure_skip_tls_verify = false;
  std::string default_namespace;  // the context's namespace, or the service account's
  std::string source;             // "kubeconfig /root/.kube/config (context admin)"
};

inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

// Reads the current context of the kubeconfig at path. Errors name the file and the missing
// part ("context \"x\" names cluster \"y\", which the file does not define").
Result<KubeConnection> LoadKubeconfig(const std::string& path);

// The pod's own service account: FailedPrecondition outside a cluster.
Result<KubeConnection> LoadInClusterConnection(const std::string& sa_dir = kServiceAccountDir);

// kubeconfig when given; else in-cluster when KUBERNETES_SERVICE_HOST is set; else the first
// file of $KUBECONFIG; else ~/.kube/config.
Result<KubeConnection> ResolveConnection(const std::string& kubeconfig);

}  // namespace slipway::krane::kubernetes
