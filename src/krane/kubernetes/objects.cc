#include "krane/kubernetes/objects.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/crypto.h"

namespace slipway::krane::kubernetes {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxObjectName = 52;
constexpr size_t kMaxLabel = 63;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

std::string Digest8(const std::string& s) { return Sha256Hex(s).substr(0, 8); }

// Lowercase, every character outside [a-z0-9-] becomes '-', runs of '-' collapse, no '-' at
// either end.
std::string Cleaned(const std::string& s) {
  std::string out;
  for (char c : s) {
    char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (!IsLowerAlnum(l)) l = '-';
    if (l == '-' && (out.empty() || out.back() == '-')) continue;
    out.push_back(l);
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

bool IsDns1035(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max || !(s[0] >= 'a' && s[0] <= 'z') || !IsLowerAlnum(s.back())) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
}

Json Labels(const std::map<std::string, std::string>& labels) {
  Json out = Json::object();
  for (const auto& [k, v] : labels) out[k] = v;
  return out;
}

std::string JoinLines(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += ", ";
    out += p;
  }
  return out;
}

}  // namespace

std::string ObjectName(const std::string& deployment_id) {
  if (IsDns1035(deployment_id, kMaxObjectName)) return deployment_id;
  std::string base = Cleaned(deployment_id);
  if (base.empty() || !(base[0] >= 'a' && base[0] <= 'z')) base = "d-" + base;
  const size_t room = kMaxObjectName - 9;
  if (base.size() > room) base.resize(room);
  while (!base.empty() && base.back() == '-') base.pop_back();
  return base + "-" + Digest8(deployment_id);
}

std::string LabelValue(const std::string& value) {
  auto valid_char = [](char c) {
    return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '.';
  };
  auto alnum = [](char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); };
  if (value.empty() ||
      (value.size() <= kMaxLabel && std::all_of(value.begin(), value.end(), valid_char) &&
       alnum(value.front()) && alnum(value.back()))) {
    return value;
  }
  std::string base = Cleaned(value);
  if (base.size() > kMaxLabel - 9) base.resize(kMaxLabel - 9);
  while (!base.empty() && base.back() == '-') base.pop_back();
  return base.empty() ? Digest8(value) : base + "-" + Digest8(value);
}

std::string WorkspaceNamespace(const std::string& workspace) {
  std::string base = Cleaned(workspace);
  if (base == workspace && !base.empty() && base.size() <= kMaxLabel) return base;
  if (base.size() > kMaxLabel - 9) base.resize(kMaxLabel - 9);
  while (!base.empty() && base.back() == '-') base.pop_back();
  return base.empty() ? "w-" + Digest8(workspace) : base + "-" + Digest8(workspace);
}

Result<std::map<std::string, std::string>> ParseNodeSelector(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument(
          fmt::format("node selector entry \"{}\" is not key=value; write KRANE_NODE_SELECTOR as "
                      "\"key=value,key2=value2\"",
                      item));
    }
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

Result<std::vector<Toleration>> ParseTolerations(const std::string& text) {
  std::vector<Toleration> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    Toleration t;
    size_t colon = item.rfind(':');
    std::string kv = colon == std::string::npos ? item : item.substr(0, colon);
    if (colon != std::string::npos) t.effect = item.substr(colon + 1);
    size_t eq = kv.find('=');
    t.key = kv.substr(0, eq);
    if (eq != std::string::npos) t.value = kv.substr(eq + 1);
    if (t.key.empty() || (!t.effect.empty() && t.effect != "NoSchedule" &&
                          t.effect != "PreferNoSchedule" && t.effect != "NoExecute")) {
      return Status::InvalidArgument(fmt::format(
          "toleration \"{}\" is not key[=value][:NoSchedule|PreferNoSchedule|NoExecute]; write "
          "KRANE_TOLERATIONS as \"key=value:NoSchedule,...\"",
          item));
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::map<std::string, std::string> DeploymentLabels(const DeploymentRef& ref) {
  return {{kLabelManagedBy, kManagedByValue},
          {kLabelDeployment, LabelValue(ref.deployment_id)},
          {kLabelWorkspace, LabelValue(ref.ns)}};
}

std::string LabelSelector(const std::map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ",";
    out += k + "=" + v;
  }
  return out;
}

Json ServiceManifest(const DeploymentSpec& spec, const std::string& ns, int port) {
  const auto labels = DeploymentLabels(spec.ref);
  return {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata",
       {{"name", ObjectName(spec.ref.deployment_id)},
        {"namespace", ns},
        {"labels", Labels(labels)},
        {"annotations", {{kAnnotationDeploymentId, spec.ref.deployment_id}}}}},
      {"spec",
       {{"clusterIP", "None"},
        {"publishNotReadyAddresses", true},
        {"selector", Labels(labels)},
        {"ports",
         Json::array(
             {{{"name", "http"}, {"port", port}, {"targetPort", port}, {"protocol", "TCP"}}})}}}};
}

Json StatefulSetManifest(const DeploymentSpec& spec, const std::string& ns, int port,
                         const PodSettings& settings) {
  const std::string name = ObjectName(spec.ref.deployment_id);
  const auto labels = DeploymentLabels(spec.ref);
  Json env = Json::array();
  for (const auto& [k, v] : spec.env) {
    if (k != "PORT") env.push_back({{"name", k}, {"value", v}});  // PORT is krane's to give
  }
  env.push_back({{"name", "PORT"}, {"value", std::to_string(port)}});
  const Json quantities = {{"cpu", fmt::format("{}m", spec.cpu_millicores)},
                           {"memory", fmt::format("{}Mi", spec.memory_mib)}};
  Json probe = {{"periodSeconds", 1},
                {"timeoutSeconds", 1},
                {"failureThreshold", 1},
                {"successThreshold", 1}};
  if (!spec.health_check_path.empty()) {
    probe["httpGet"] = {{"path", spec.health_check_path}, {"port", port}};
  } else {
    probe["tcpSocket"] = {{"port", port}};
  }
  Json container = {
      {"name", kContainerName},
      {"image", spec.image},
      {"env", env},
      {"ports", Json::array({{{"name", "http"}, {"containerPort", port}, {"protocol", "TCP"}}})},
      {"resources", {{"requests", quantities}, {"limits", quantities}}},
      {"readinessProbe", probe}};
  Json pod_spec = {{"containers", Json::array({container})},
                   {"terminationGracePeriodSeconds", settings.termination_grace_seconds},
                   {"enableServiceLinks", false},
                   {"automountServiceAccountToken", false}};
  if (settings.host_network) {
    pod_spec["hostNetwork"] = true;
    pod_spec["dnsPolicy"] = "ClusterFirstWithHostNet";
  }
  if (!settings.node_selector.empty()) pod_spec["nodeSelector"] = Labels(settings.node_selector);
  if (!settings.tolerations.empty()) {
    Json tolerations = Json::array();
    for (const auto& t : settings.tolerations) {
      Json one = {{"key", t.key}, {"operator", t.value.empty() ? "Exists" : "Equal"}};
      if (!t.value.empty()) one["value"] = t.value;
      if (!t.effect.empty()) one["effect"] = t.effect;
      tolerations.push_back(one);
    }
    pod_spec["tolerations"] = tolerations;
  }
  if (!settings.image_pull_secret.empty()) {
    pod_spec["imagePullSecrets"] = Json::array({{{"name", settings.image_pull_secret}}});
  }
  Json sts = {{"apiVersion", "apps/v1"},
              {"kind", "StatefulSet"},
              {"metadata",
               {{"name", name},
                {"namespace", ns},
                {"labels", Labels(labels)},
                {"annotations",
                 {{kAnnotationDeploymentId, spec.ref.deployment_id},
                  {kAnnotationPort, std::to_string(port)}}}}},
              {"spec",
               {{"replicas", spec.replicas},
                {"serviceName", name},
                // Parallel: replicas start together, not one after the other's readiness.
                {"podManagementPolicy", "Parallel"},
                {"selector", {{"matchLabels", Labels(labels)}}},
                {"template",
                 {{"metadata",
                   {{"labels", Labels(labels)},
                    {"annotations", {{kAnnotationDeploymentId, spec.ref.deployment_id}}}}},
                  {"spec", pod_spec}}}}}};
  sts["metadata"]["annotations"][kAnnotationSpecDigest] = SpecDigest(sts);
  return sts;
}

std::string SpecDigest(const Json& manifest) {
  Json copy = manifest;
  if (copy.contains("metadata") && copy["metadata"].contains("annotations")) {
    copy["metadata"]["annotations"].erase(kAnnotationSpecDigest);
  }
  return Sha256Hex(copy.dump()).substr(0, 16);
}

int PodOrdinal(const std::string& pod_name, const std::string& statefulset_name) {
  if (pod_name.size() <= statefulset_name.size() + 1 ||
      pod_name.compare(0, statefulset_name.size() + 1, statefulset_name + "-") != 0) {
    return -1;
  }
  int value = 0;
  for (size_t i = statefulset_name.size() + 1; i < pod_name.size(); ++i) {
    char c = pod_name[i];
    if (c < '0' || c > '9' || value > 100000) return -1;
    value = value * 10 + (c - '0');
  }
  return value;
}

PodVerdict JudgePod(const Json& pod) {
  PodVerdict v;
  const Json metadata = pod.value("metadata", Json::object());
  const Json status = pod.value("status", Json::object());
  if (metadata.contains("deletionTimestamp") && !metadata["deletionTimestamp"].is_null()) {
    v.status = InstanceStatus::kTerminating;
    v.reason = "the pod is being deleted";
    return v;
  }
  const std::string phase = status.value("phase", "");
  bool ready = false;
  for (const Json& c : status.value("conditions", Json::array())) {
    const std::string type = c.value("type", "");
    const std::string cstatus = c.value("status", "");
    if (type == "Ready" && cstatus == "True") ready = true;
    if (type == "PodScheduled" && cstatus == "False" && c.value("reason", "") == "Unschedulable") {
      v.status = InstanceStatus::kFailed;
      v.reason = fmt::format("Unschedulable: the scheduler cannot place the pod: {}",
                             c.value("message", "no reason given"));
      return v;
    }
  }
  const Json containers = status.value("containerStatuses", Json::array());
  for (const Json& cs : containers) {
    const Json state = cs.value("state", Json::object());
    const Json last = cs.value("lastState", Json::object());
    const int restarts = cs.value("restartCount", 0);
    if (state.contains("waiting")) {
      const Json w = state["waiting"];
      const std::string reason = w.value("reason", "");
      const std::string message = w.value("message", "");
      if (reason == "ImagePullBackOff" || reason == "ErrImagePull" ||
          reason == "InvalidImageName" || reason == "ErrImageNeverPull") {
        v.status = InstanceStatus::kFailed;
        v.reason = fmt::format("{}: the image {} cannot be pulled: {}", reason,
                               cs.value("image", "?"), message.empty() ? "no detail" : message);
        return v;
      }
      if (reason == "CreateContainerConfigError" || reason == "CreateContainerError" ||
          reason == "RunContainerError" || reason == "StartError") {
        v.status = InstanceStatus::kFailed;
        v.reason = fmt::format("{}: {}", reason, message);
        v.wants_log = false;
        return v;
      }
    }
    // An exit: now (terminated) or in the last run (a crash loop between two restarts).
    const Json* terminated = nullptr;
    bool previous = false;
    if (state.contains("terminated")) {
      terminated = &state["terminated"];
    } else if (!ready && last.contains("terminated")) {
      terminated = &last["terminated"];
      previous = true;
    }
    if (terminated != nullptr && !(ready && !previous)) {
      const int code = terminated->value("exitCode", 0);
      const std::string treason = terminated->value("reason", "");
      std::string why = treason == "OOMKilled"
                            ? fmt::format("OOMKilled: out of memory, exit code {}", code)
                            : fmt::format("exited with exit code {}{}", code,
                                          treason.empty() ? "" : " (" + treason + ")");
      std::string waiting_reason;
      if (state.contains("waiting")) waiting_reason = state["waiting"].value("reason", "");
      if (waiting_reason == "CrashLoopBackOff") {
        why = "CrashLoopBackOff: " + why;
      }
      if (restarts > 0) {
        why += restarts == 1 ? ", restarted once" : fmt::format(", restarted {} times", restarts);
      }
      v.status = InstanceStatus::kFailed;
      v.reason = why;
      v.wants_log = true;
      v.previous_log = previous;
      return v;
    }
  }
  if (phase == "Failed") {
    v.status = InstanceStatus::kFailed;
    v.reason = fmt::format("the pod failed: {} {}", status.value("reason", ""),
                           status.value("message", ""));
    return v;
  }
  if (ready) {
    v.status = InstanceStatus::kRunning;
    return v;
  }
  std::vector<std::string> why;
  for (const Json& cs : containers) {
    const Json state = cs.value("state", Json::object());
    if (state.contains("waiting")) {
      why.push_back("container waiting: " + state["waiting"].value("reason", "?"));
    } else if (state.contains("running")) {
      why.push_back("container running but its readiness probe has not passed yet");
    }
  }
  if (why.empty()) {
    why.push_back(phase.empty() ? "the pod has no status yet" : "pod phase " + phase);
  }
  v.reason = "not ready: " + JoinLines(why);
  return v;
}

}  // namespace slipway::krane::kubernetes
