// What krane's deployments are in Kubernetes terms, as pure functions (no I/O), so the mapping
// is unit-tested on recorded JSON: object names derived from deployment ids, the headless
// Service and the StatefulSet krane creates, and the verdict on a pod.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "krane/backend.h"

namespace slipway::krane::kubernetes {

// Labels on every object krane creates (and on the pods, through the StatefulSet's template).
inline constexpr const char* kLabelManagedBy = "app.kubernetes.io/managed-by";
inline constexpr const char* kManagedByValue = "slipway-krane";
inline constexpr const char* kLabelDeployment = "slipway.dev/deployment";
inline constexpr const char* kLabelWorkspace = "slipway.dev/workspace";
// Annotations: the deployment id as given, the port, and a digest of the desired object so a
// second identical CreateDeployment is recognised without a field-by-field diff.
inline constexpr const char* kAnnotationDeploymentId = "slipway.dev/deployment-id";
inline constexpr const char* kAnnotationPort = "slipway.dev/port";
inline constexpr const char* kAnnotationSpecDigest = "slipway.dev/spec-digest";
inline constexpr const char* kContainerName = "app";

// The object name for a deployment id: a DNS-1035 label (lowercase letters, digits and '-',
// starting with a letter, at most 52 characters so the pods' controller-revision-hash label
// fits in 63). An id that is already one is used as is; any other (upper-case letters, '_',
// a leading digit, too long) is lowercased and cleaned, and gets an 8-hex digest of the id, so
// "App" and "app" never share objects.
std::string ObjectName(const std::string& deployment_id);

// A value for a label: the value itself when it is valid, else a cleaned form with a digest.
std::string LabelValue(const std::string& value);

// The namespace krane uses for a workspace with per-workspace namespaces: a DNS-1123 label.
std::string WorkspaceNamespace(const std::string& workspace);

struct Toleration {
  std::string key, value, effect;  // "kwok.x-k8s.io/node", "fake", "NoSchedule"
};

// How pods are placed and reached; from KraneBackendConfig.
struct PodSettings {
  bool host_network = false;
  std::map<std::string, std::string> node_selector;
  std::vector<Toleration> tolerations;
  std::string image_pull_secret;
  int termination_grace_seconds = 5;
};

// "k=v,k2=v2" → map; InvalidArgument naming the bad entry.
Result<std::map<std::string, std::string>> ParseNodeSelector(const std::string& text);
// "key=value:Effect,key2:Effect" → tolerations.
Result<std::vector<Toleration>> ParseTolerations(const std::string& text);

// The labels that select one deployment's objects and pods.
std::map<std::string, std::string> DeploymentLabels(const DeploymentRef& ref);
std::string LabelSelector(const std::map<std::string, std::string>& labels);

// The headless Service (clusterIP None, publishNotReadyAddresses) that gives each pod a DNS
// name; it selects the deployment's pods and owns nothing.
nlohmann::json ServiceManifest(const DeploymentSpec& spec, const std::string& ns, int port);

// The StatefulSet: replicas, one container "app" with requests equal to limits, the port and
// PORT env, a readiness probe (HTTP GET of the health check path, else TCP), labels and the
// spec digest annotation.
nlohmann::json StatefulSetManifest(const DeploymentSpec& spec, const std::string& ns, int port,
                                   const PodSettings& settings);

// The digest a manifest carries in kAnnotationSpecDigest (computed without that annotation).
std::string SpecDigest(const nlohmann::json& manifest);

// The replica number of a pod named "<statefulset>-<i>"; -1 otherwise.
int PodOrdinal(const std::string& pod_name, const std::string& statefulset_name);

// What a pod says about its instance, before the address is known.
struct PodVerdict {
  InstanceStatus status = InstanceStatus::kPending;
  std::string reason;
  // For kFailed: whether the log explains it, and whether it is the previous run's log.
  bool wants_log = false;
  bool previous_log = false;
};
PodVerdict JudgePod(const nlohmann::json& pod);

}  // namespace slipway::krane::kubernetes
