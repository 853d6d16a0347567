#include "krane/kubernetes/kubernetes_backend.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "krane/kubernetes/kube_api.h"
#include "krane/kubernetes/kube_config.h"
#include "krane/kubernetes/objects.h"
#include "krane/log_lines.h"
#include "krane/loopback_port.h"
#include "net/http.h"

namespace slipway::krane::kubernetes {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int kFailureLogLines = 20;
constexpr auto kDeleteWait = 30s;

enum class AddressMode { kDns, kPodIp };

struct Settings {
  std::string ns;  // the fixed namespace (when not per workspace)
  bool per_workspace = false;
  AddressMode address = AddressMode::kDns;
  std::string cluster_domain;
  PodSettings pods;
};

int PortOf(const Json& statefulset) {
  try {
    return std::stoi(statefulset["metadata"]["annotations"].value(kAnnotationPort, "0"));
  } catch (...) {
    return 0;
  }
}

std::string AnnotationOf(const Json& object, const char* key) {
  if (!object.is_object() || !object.contains("metadata")) return "";
  const Json annotations = object["metadata"].value("annotations", Json::object());
  return annotations.is_object() ? annotations.value(key, "") : "";
}

// One namespace's watches: pods and StatefulSets carrying krane's managed-by label.
struct NamespaceWatches {
  std::unique_ptr<ResourceWatch> pods;
  std::unique_ptr<ResourceWatch> statefulsets;
};

class KubernetesBackend : public KraneBackend, public KubernetesBackendView {
 public:
  KubernetesBackend(Settings settings, std::unique_ptr<KubeApi> api)
      : settings_(std::move(settings)), api_(std::move(api)) {}

  ~KubernetesBackend() override {
    std::lock_guard lock(watches_mu_);
    watches_.clear();  // joins the watch threads before the API client goes
  }

  std::string_view name() const override { return "kubernetes"; }

  // /readyz is open to every caller (system:public-info-viewer), so no Role rule is needed.
  Status Ping() override {
    SLIPWAY_ASSIGN_OR_RETURN(KubeReply reply,
                             api_->Call("GET", "/readyz", nullptr, "application/json",
                                        std::chrono::seconds(5)));
    if (reply.status != 200) {
      return Status::Unavailable("the API server at " + api_->connection().server +
                                 " is not ready (HTTP " + std::to_string(reply.status) +
                                 "): " + reply.text);
    }
    return Status::Ok();
  }

  std::string NamespaceOf(const DeploymentRef& ref) const override {
    return settings_.per_workspace ? WorkspaceNamespace(ref.ns) : settings_.ns;
  }

  WatchCounters PodWatchCounters(const std::string& ns) override {
    return Watches(ns).pods->counters();
  }

  uint64_t WaitForPodChange(const std::string& ns, uint64_t seen,
                            std::chrono::milliseconds timeout) override {
    return Watches(ns).pods->WaitForChange(seen, timeout);
  }

  // The pod watch of the deployment's namespace: a pod created, deleted, or changed (its Ready
  // condition, the kubelet's probe) is an event. Versions are the watch's plus one, so that 0
  // comes before everything even before the first list.
  uint64_t WaitForInstanceChange(const DeploymentRef& ref, uint64_t seen,
                                 std::chrono::milliseconds timeout) override {
    ResourceWatch& pods = *Watches(NamespaceOf(ref)).pods;
    if (seen == 0) return pods.version() + 1;
    return pods.WaitForChange(seen - 1, timeout) + 1;
  }

  Result<std::vector<Instance>> CreateDeployment(const DeploymentSpec& spec) override {
    const std::string ns = NamespaceOf(spec.ref);
    const std::string name = ObjectName(spec.ref.deployment_id);
    if (settings_.per_workspace) SLIPWAY_RETURN_IF_ERROR(EnsureNamespace(ns));
    NamespaceWatches& watches = Watches(ns);

    // One creator at a time per krane: two deployments must not be handed the same port.
    std::lock_guard lock(create_mu_);
    SLIPWAY_ASSIGN_OR_RETURN(std::optional<Json> existing,
                             GetObject("apps", "statefulsets", ns, name));
    SLIPWAY_ASSIGN_OR_RETURN(int port, PortFor(spec, existing, watches));

    Json service = ServiceManifest(spec, ns, port);
    service["metadata"]["annotations"][kAnnotationSpecDigest] = SpecDigest(service);
    SLIPWAY_RETURN_IF_ERROR(Ensure("", "services", ns, name, service, nullptr));
    Json statefulset = StatefulSetManifest(spec, ns, port, settings_.pods);
    Json written;
    SLIPWAY_RETURN_IF_ERROR(Ensure("apps", "statefulsets", ns, name, statefulset, &written));
    watches.statefulsets->Observe(written);
    SLIPWAY_ASSIGN_OR_RETURN(std::vector<Json> pods, ListPods(spec.ref, ns));
    return Describe(spec.ref, ns, name, written, pods);
  }

  Result<std::vector<Instance>> GetDeployment(const DeploymentRef& ref) override {
    const std::string ns = NamespaceOf(ref);
    const std::string name = ObjectName(ref.deployment_id);
    NamespaceWatches& watches = Watches(ns);
    const std::string label = LabelValue(ref.deployment_id);
    std::optional<Json> statefulset;
    std::vector<Json> pods;
    if (watches.pods->synced() && watches.statefulsets->synced()) {
      for (Json& s : watches.statefulsets->WithLabel(kLabelDeployment, label)) {
        if (s["metadata"].value("name", "") == name) statefulset = std::move(s);
      }
      pods = watches.pods->WithLabel(kLabelDeployment, label);
    } else {
      SLIPWAY_ASSIGN_OR_RETURN(pods, ListPods(ref, ns));
    }
    if (!statefulset) {
      // Not in the copy (yet): created by another krane a moment ago, or gone.
      SLIPWAY_ASSIGN_OR_RETURN(statefulset, GetObject("apps", "statefulsets", ns, name));
    }
    if (!statefulset && pods.empty()) {
      return Status::NotFound(fmt::format(
          "deployment \"{}\" in namespace \"{}\" has no StatefulSet or pods; create it with "
          "CreateDeployment first",
          ref.deployment_id, ns));
    }
    return Describe(ref, ns, name, statefulset.value_or(Json()), pods);
  }

  // The kubelet's pods/log with timestamps, one pod after the other (its stdout and stderr come
  // as one stream). sinceTime has second precision: lines at or before after_ns are dropped here.
  Result<std::vector<LogLine>> Logs(const DeploymentRef& ref, const LogQuery& q) override {
    const std::string ns = NamespaceOf(ref);
    const std::string name = ObjectName(ref.deployment_id);
    SLIPWAY_ASSIGN_OR_RETURN(std::vector<Json> pods, ListPods(ref, ns));
    if (pods.empty()) {
      return Status::NotFound(fmt::format("deployment \"{}\" has no pods in namespace \"{}\"",
                                          ref.deployment_id, ns));
    }
    std::vector<LogLine> lines;
    bool found = false;
    for (const Json& pod : pods) {
      const std::string pod_name = pod["metadata"].value("name", "");
      if (q.instance >= 0 && PodOrdinal(pod_name, name) != q.instance) continue;
      found = true;
      std::string path = CollectionPath("", "pods", ns) + "/" + pod_name +
                         fmt::format("/log?container={}&timestamps=true", kContainerName);
      if (q.after_ns > 0) {
        const std::time_t secs = static_cast<std::time_t>(q.after_ns / 1'000'000'000);
        std::tm tm{};
        gmtime_r(&secs, &tm);
        char when[32];
        std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        path += "&sinceTime=" + net::UriEncode(when);
      }
      if (q.tail > 0) path += fmt::format("&tailLines={}", q.tail);
      // A restarted container's log starts empty: the run before it (what a crash loop
      // printed) comes first, as docker's log of a restarted container keeps it.
      std::vector<std::string> reads;
      if (RestartsOf(pod) > 0) reads.push_back(path + "&previous=true");
      reads.push_back(path);
      std::vector<LogLine> of_pod;
      for (const std::string& read : reads) {
        SLIPWAY_ASSIGN_OR_RETURN(KubeReply reply,
                                 api_->Call("GET", read, nullptr, "application/json", 10s));
        if (reply.status == 400) continue;  // that container has not started: no log yet
        if (reply.status != 200) {
          return api_->ErrorFor(reply, {"get", "", "pods/log", ns, pod_name});
        }
        TimestampedLineSplitter split("stdout");
        split.Feed(reply.text, &of_pod);
        split.Finish(&of_pod);
      }
      if (q.tail > 0 && of_pod.size() > static_cast<size_t>(q.tail)) {
        of_pod.erase(of_pod.begin(), of_pod.end() - q.tail);
      }
      for (auto& l : of_pod) {
        if (l.time_ns <= q.after_ns) continue;
        l.instance_id = pod_name;
        lines.push_back(std::move(l));
      }
    }
    if (!found) {
      return Status::NotFound(fmt::format("deployment {} has no instance {}", ref.deployment_id,
                                          q.instance));
    }
    std::stable_sort(lines.begin(), lines.end(),
                     [](const LogLine& a, const LogLine& b) { return a.time_ns < b.time_ns; });
    return lines;
  }

  Result<int> DeleteDeployment(const DeploymentRef& ref) override {
    const std::string ns = NamespaceOf(ref);
    const std::string name = ObjectName(ref.deployment_id);
    SLIPWAY_ASSIGN_OR_RETURN(std::vector<Json> pods, ListPods(ref, ns));
    // Foreground: the StatefulSet goes only after the garbage collector removed its pods.
    const Json options = {
        {"apiVersion", "v1"}, {"kind", "DeleteOptions"}, {"propagationPolicy", "Foreground"}};
    SLIPWAY_ASSIGN_OR_RETURN(bool had_statefulset,
                             DeleteObject("apps", "statefulsets", ns, name, options));
    SLIPWAY_ASSIGN_OR_RETURN(bool had_service, DeleteObject("", "services", ns, name, options));
    // Wait (bounded) until the pods and the StatefulSet are gone, so a caller that deletes and
    // recreates does not meet the old pods.
    const auto deadline = std::chrono::steady_clock::now() + kDeleteWait;
    while (std::chrono::steady_clock::now() < deadline) {
      SLIPWAY_ASSIGN_OR_RETURN(auto left, GetObject("apps", "statefulsets", ns, name));
      SLIPWAY_ASSIGN_OR_RETURN(auto left_pods, ListPods(ref, ns));
      if (!left && left_pods.empty()) break;
      std::this_thread::sleep_for(200ms);
    }
    if (had_statefulset || had_service || !pods.empty()) {
      spdlog::info("deleted deployment {} (namespace {}): StatefulSet {}, {} pods",
                   ref.deployment_id, ns, name, pods.size());
    }
    return static_cast<int>(pods.size());
  }

 private:
  NamespaceWatches& Watches(const std::string& ns) {
    std::lock_guard lock(watches_mu_);
    auto it = watches_.find(ns);
    if (it != watches_.end()) return it->second;
    const std::string selector = LabelSelector({{kLabelManagedBy, kManagedByValue}});
    NamespaceWatches& w = watches_[ns];
    w.pods = std::make_unique<ResourceWatch>(*api_, "", "pods", ns, selector);
    w.statefulsets = std::make_unique<ResourceWatch>(*api_, "apps", "statefulsets", ns, selector);
    return w;
  }

  Status EnsureNamespace(const std::string& ns) {
    {
      std::lock_guard lock(namespaces_mu_);
      if (namespaces_.count(ns)) return Status::Ok();
    }
    const Json body = {
        {"apiVersion", "v1"},
        {"kind", "Namespace"},
        {"metadata", {{"name", ns}, {"labels", {{kLabelManagedBy, kManagedByValue}}}}}};
    SLIPWAY_ASSIGN_OR_RETURN(KubeReply reply, api_->Call("POST", "/api/v1/namespaces", &body));
    if (reply.status != 201 && reply.status != 409) {
      return api_->ErrorFor(reply, {"create", "", "namespaces", "", ns});
    }
    std::lock_guard lock(namespaces_mu_);
    namespaces_.insert(ns);
    return Status::Ok();
  }

  // The port of a deployment: the spec's; else, with host networking, the one it already has
  // or a free loopback port no other deployment of this namespace uses; else 8080.
  Result<int> PortFor(const DeploymentSpec& spec, const std::optional<Json>& existing,
                      NamespaceWatches& watches) {
    if (spec.port != 0) return spec.port;
    if (!settings_.pods.host_network) return kDefaultPodPort;
    if (existing && PortOf(*existing) > 0) return PortOf(*existing);
    std::set<int> taken;
    watches.statefulsets->WaitSynced(2s);
    for (const Json& s : watches.statefulsets->WithLabel(kLabelManagedBy, kManagedByValue)) {
      if (int p = PortOf(s); p > 0) taken.insert(p);
    }
    return PickFreeLoopbackPort(taken);
  }

  std::string ObjectPath(const std::string& group, const std::string& resource,
                         const std::string& ns, const std::string& name) const {
    return CollectionPath(group, resource, ns) + "/" + name;
  }

  Result<std::optional<Json>> GetObject(const std::string& group, const std::string& resource,
                                        const std::string& ns, const std::string& name) {
    SLIPWAY_ASSIGN_OR_RETURN(KubeReply reply,
                             api_->Call("GET", ObjectPath(group, resource, ns, name)));
    if (reply.status == 404) return std::optional<Json>();
    if (reply.status != 200) return api_->ErrorFor(reply, {"get", group, resource, ns, name});
    return std::optional<Json>(std::move(reply.body));
  }

  // Creates the object, or, when one of that name exists: nothing if it carries the same spec
  // digest, else a merge patch of its labels, annotations and spec. 409 on create is "exists".
  Status Ensure(const std::string& group, const std::string& resource, const std::string& ns,
                const std::string& name, const Json& desired, Json* written) {
    SLIPWAY_ASSIGN_OR_RETURN(KubeReply created,
                             api_->Call("POST", CollectionPath(group, resource, ns), &desired));
    if (created.status == 201 || created.status == 200) {
      spdlog::info("created {} {}/{}", resource, ns, name);
      if (written) *written = std::move(created.body);
      return Status::Ok();
    }
    if (created.status != 409)
      return api_->ErrorFor(created, {"create", group, resource, ns, name});
    SLIPWAY_ASSIGN_OR_RETURN(std::optional<Json> current, GetObject(group, resource, ns, name));
    if (!current || (*current)["metadata"].contains("deletionTimestamp")) {
      return Status::Unavailable(fmt::format(
          "{} {}/{} is being deleted while krane creates it; create the deployment again once "
          "it is gone",
          resource, ns, name));
    }
    const std::string want = AnnotationOf(desired, kAnnotationSpecDigest);
    const Json current_labels = (*current)["metadata"].value("labels", Json::object());
    if (current_labels.value(kLabelManagedBy, "") != kManagedByValue) {
      return Status::AlreadyExists(fmt::format(
          "{} {}/{} exists but krane did not create it (no {}={} label); choose another "
          "deployment id or remove that object",
          resource, ns, name, kLabelManagedBy, kManagedByValue));
    }
    if (AnnotationOf(*current, kAnnotationSpecDigest) == want) {
      if (written) *written = std::move(*current);
      return Status::Ok();
    }
    Json patch = {{"metadata",
                   {{"labels", desired["metadata"]["labels"]},
                    {"annotations", desired["metadata"]["annotations"]}}},
                  {"spec", desired["spec"]}};
    if (resource == "statefulsets") {
      // selector and serviceName are immutable and derived from the id: leave them be.
      patch["spec"].erase("selector");
      patch["spec"].erase("serviceName");
      patch["spec"].erase("podManagementPolicy");
    }
    SLIPWAY_ASSIGN_OR_RETURN(KubeReply patched,
                             api_->Call("PATCH", ObjectPath(group, resource, ns, name), &patch,
                                        "application/merge-patch+json"));
    if (patched.status != 200) return api_->ErrorFor(patched, {"patch", group, resource, ns, name});
    spdlog::info("updated {} {}/{} to the requested spec", resource, ns, name);
    if (written) *written = std::move(patched.body);
    return Status::Ok();
  }

  // true when it existed.
  Result<bool> DeleteObject(const std::string& group, const std::string& resource,
                            const std::string& ns, const std::string& name, const Json& options) {
    SLIPWAY_ASSIGN_OR_RETURN(KubeReply reply,
                             api_->Call("DELETE", ObjectPath(group, resource, ns, name), &options));
    if (reply.status == 404) return false;
    if (reply.status != 200 && reply.status != 202) {
      return api_->ErrorFor(reply, {"delete", group, resource, ns, name});
    }
    return true;
  }

  Result<std::vector<Json>> ListPods(const DeploymentRef& ref, const std::string& ns) {
    const std::string path = CollectionPath("", "pods", ns) + "?labelSelector=" +
                             net::UriEncode(LabelSelector(DeploymentLabels(ref)));
    SLIPWAY_ASSIGN_OR_RETURN(KubeReply reply, api_->Call("GET", path));
    if (reply.status != 200) return api_->ErrorFor(reply, {"list", "", "pods", ns, ""});
    std::vector<Json> out;
    for (Json& item : reply.body["items"]) out.push_back(std::move(item));
    return out;
  }

  Result<std::vector<Instance>> Describe(const DeploymentRef& ref, const std::string& ns,
                                         const std::string& name, const Json& statefulset,
                                         const std::vector<Json>& pods) {
    int replicas = 0;
    int port = 0;
    if (statefulset.is_object()) {
      replicas = statefulset["spec"].value("replicas", 0);
      port = PortOf(statefulset);
    }
    std::map<int, Instance> by_ordinal;
    for (const Json& pod : pods) {
      const std::string pod_name = pod["metadata"].value("name", "");
      const int ordinal = PodOrdinal(pod_name, name);
      if (ordinal < 0) continue;
      Instance instance;
      instance.id = fmt::format("{}-{}", ref.deployment_id, ordinal);
      const int pod_port = port > 0 ? port : PodPort(pod);
      if (settings_.address == AddressMode::kPodIp) {
        const std::string ip = pod.value("status", Json::object()).value("podIP", "");
        instance.address = ip.empty() ? "" : fmt::format("{}:{}", ip, pod_port);
      } else {
        instance.address = fmt::format("{}.{}.{}.svc.{}:{}", pod_name, name, ns,
                                       settings_.cluster_domain, pod_port);
      }
      PodVerdict verdict = JudgePod(pod);
      instance.status = verdict.status;
      instance.reason = verdict.reason;
      if (verdict.status == InstanceStatus::kFailed && verdict.wants_log) {
        instance.reason = WithLogTail(verdict.reason, pod, verdict.previous_log, ns);
      }
      if (instance.status == InstanceStatus::kRunning) instance.reason.clear();
      by_ordinal[ordinal] = std::move(instance);
    }
    for (int i = 0; i < replicas; ++i) {
      if (by_ordinal.count(i)) continue;
      Instance pending;
      pending.id = fmt::format("{}-{}", ref.deployment_id, i);
      pending.status = InstanceStatus::kPending;
      pending.reason = fmt::format(
          "pod {}-{} does not exist yet (the StatefulSet controller "
          "creates it)",
          name, i);
      by_ordinal[i] = std::move(pending);
    }
    std::vector<Instance> out;
    for (auto& [ordinal, instance] : by_ordinal) out.push_back(std::move(instance));
    return out;
  }

  static int PodPort(const Json& pod) {
    try {
      return pod["spec"]["containers"][0]["ports"][0].value("containerPort", 0);
    } catch (...) {
      return 0;
    }
  }

  // How often the pod's container was restarted (its status's restartCount).
  static int RestartsOf(const Json& pod) {
    int restarts = 0;
    for (const Json& cs :
         pod.value("status", Json::object()).value("containerStatuses", Json::array())) {
      restarts = cs.value("restartCount", 0);
    }
    return restarts;
  }

  // "exited with exit code 3; last log lines:\nboom". Log tails are cached per pod run, so
  // answering every second from memory does not read the log every second.
  std::string WithLogTail(const std::string& reason, const Json& pod, bool previous,
                          const std::string& ns) {
    const std::string pod_name = pod["metadata"].value("name", "");
    const int restarts = RestartsOf(pod);
    const std::string key =
        fmt::format("{}/{}/{}", pod["metadata"].value("uid", pod_name), restarts, previous);
    {
      std::lock_guard lock(logs_mu_);
      if (auto it = log_tails_.find(key); it != log_tails_.end()) return reason + it->second;
    }
    const std::string path = CollectionPath("", "pods", ns) + "/" + pod_name +
                             fmt::format("/log?container={}&tailLines={}{}", kContainerName,
                                         kFailureLogLines, previous ? "&previous=true" : "");
    auto reply = api_->Call("GET", path, nullptr, "application/json", 5s);
    std::string suffix;
    if (!reply.ok()) {
      suffix = "; its log could not be read: " + reply.status().message();
    } else if (reply->status != 200) {
      suffix = "; its log could not be read: " +
               api_->ErrorFor(*reply, {"get", "", "pods/log", ns, pod_name}).message();
    } else {
      std::string text = reply->text;
      while (!text.empty() && text.back() == '\n') text.pop_back();
      suffix =
          text.empty() ? "; it wrote nothing to stdout or stderr"
                       : "; last log lines:\n" + BoundLogTail(std::move(text));
    }
    std::lock_guard lock(logs_mu_);
    if (log_tails_.size() > 1000) log_tails_.clear();
    if (reply.ok() && reply->status == 200) log_tails_[key] = suffix;
    return reason + suffix;
  }

  Settings settings_;
  std::unique_ptr<KubeApi> api_;
  std::mutex create_mu_;
  std::mutex watches_mu_;
  std::map<std::string, NamespaceWatches> watches_;
  std::mutex namespaces_mu_;
  std::set<std::string> namespaces_;
  std::mutex logs_mu_;
  std::map<std::string, std::string> log_tails_;
};

}  // namespace

Result<std::unique_ptr<KraneBackend>> MakeKubernetesBackend(const KraneBackendConfig& config) {
  SLIPWAY_ASSIGN_OR_RETURN(KubeConnection connection, ResolveConnection(config.kubeconfig));
  Settings s;
  s.per_workspace = config.namespace_per_workspace;
  s.ns = !config.kube_namespace.empty()          ? config.kube_namespace
         : !connection.default_namespace.empty() ? connection.default_namespace
                                                 : "default";
  s.cluster_domain = config.cluster_domain.empty() ? "cluster.local" : config.cluster_domain;
  s.pods.host_network = config.host_network;
  s.pods.image_pull_secret = config.image_pull_secret;
  s.pods.termination_grace_seconds = config.termination_grace_seconds;
  SLIPWAY_ASSIGN_OR_RETURN(s.pods.node_selector, ParseNodeSelector(config.node_selector));
  SLIPWAY_ASSIGN_OR_RETURN(s.pods.tolerations, ParseTolerations(config.tolerations));
  if (config.address_mode.empty()) {
    s.address = config.host_network ? AddressMode::kPodIp : AddressMode::kDns;
  } else if (config.address_mode == "dns") {
    s.address = AddressMode::kDns;
  } else if (config.address_mode == "pod-ip") {
    s.address = AddressMode::kPodIp;
  } else {
    return Status::InvalidArgument(fmt::format(
        "unknown krane address mode \"{}\"; set KRANE_ADDRESS to dns (the pod's name in the "
        "headless Service) or pod-ip",
        config.address_mode));
  }
  spdlog::info("krane kubernetes backend: API server {} from {}, namespace {}{}", connection.server,
               connection.source, s.per_workspace ? "per workspace" : s.ns,
               s.pods.host_network ? ", host network" : "");
  return std::unique_ptr<KraneBackend>(
      std::make_unique<KubernetesBackend>(std::move(s), std::make_unique<KubeApi>(connection)));
}

}  // namespace slipway::krane::kubernetes
