#include "krane/docker/docker_backend.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "base/crypto.h"
#include "krane/docker/container_state.h"
#include "krane/docker/engine_client.h"
#include "krane/log_lines.h"
#include "krane/loopback_port.h"
#include "krane/readiness.h"
#include "net/http.h"

namespace slipway::krane::docker {
namespace {

using Json = nlohmann::json;

constexpr const char* kManagedByValue = "krane";
// Instances listen on loopback only: the machine has no other network, and the gateway
// reaches them there.
constexpr const char* kInstanceHost = "127.0.0.1";
constexpr size_t kFailureLogLines = 20;

// A container of a deployment as GET /containers/json lists it.
struct ListedContainer {
  std::string id;
  std::string name;   // "<deployment>-<i>", without dockerd's leading '/'
  std::string state;  // "created", "running", "exited", ...
  int index = -1;     // the replica number i, -1 when the name does not end in one
  int port = 0;       // from the slipway.port label, 0 when missing
};

enum class NetworkMode { kHost, kBridge };

// Where one instance listens. With host networking both are the same loopback port; in bridge
// mode the app binds `container` inside its namespace and dockerd publishes it on `host`.
struct InstancePorts {
  int host = 0;       // on 127.0.0.1: slipway.port, the address, where krane probes
  int container = 0;  // PORT, what the app binds
};

std::string ContainerName(const std::string& deployment_id, int index) {
  return fmt::format("{}-{}", deployment_id, index);
}

int ParseInt(std::string_view s, int fallback) {
  int value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size() ? value : fallback;
}

std::string LabelOf(const Json& labels, const char* name) {
  if (!labels.is_object()) return "";
  auto it = labels.find(name);
  return it != labels.end() && it->is_string() ? it->get<std::string>() : "";
}

// "repo:tag" → {"repo", "tag"}; "repo@sha256:..." → {"repo", "sha256:..."}; a bare name gets
// "latest" (an empty tag would make dockerd pull every tag of the repository).
std::pair<std::string, std::string> SplitImageReference(const std::string& image) {
  if (size_t at = image.find('@'); at != std::string::npos) {
    return {image.substr(0, at), image.substr(at + 1)};
  }
  size_t slash = image.rfind('/');
  size_t colon = image.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    return {image.substr(0, colon), image.substr(colon + 1)};
  }
  return {image, "latest"};
}

Result<NetworkMode> ParseNetworkMode(const std::string& mode) {
  if (mode == "host") return NetworkMode::kHost;
  if (mode == "bridge") return NetworkMode::kBridge;
  return Status::InvalidArgument(fmt::format(
      "unknown krane network mode \"{}\"; set --network-mode (KRANE_NETWORK_MODE) to host (the "
      "app binds the loopback port krane gives it) or bridge (dockerd publishes the app's port "
      "on a loopback port)",
      mode));
}

class DockerBackend : public KraneBackend, public DockerBackendView {
 public:
  DockerBackend(KraneBackendConfig config, NetworkMode network_mode,
                std::unique_ptr<EngineClient> engine)
      : config_(std::move(config)), network_mode_(network_mode), engine_(std::move(engine)) {}

  std::string_view name() const override { return "docker"; }

  Status Ping() override {
    SLIPWAY_ASSIGN_OR_RETURN(auto reply, engine_->Call("GET", "/_ping", "", std::chrono::seconds(5)));
    if (reply.status != 200) return EngineClient::ErrorFor(reply, "pinging dockerd");
    return Status::Ok();
  }

  Result<std::vector<Instance>> CreateDeployment(const DeploymentSpec& spec) override {
    if (network_mode_ == NetworkMode::kHost && spec.port != 0 && spec.replicas > 1) {
      return Status::InvalidArgument(fmt::format(
          "deployment \"{}\" asks for port {} and {} replicas, but with host networking every "
          "replica needs its own port: leave port at 0 so krane picks one per instance",
          spec.ref.deployment_id, spec.port, spec.replicas));
    }
    SLIPWAY_ASSIGN_OR_RETURN(auto existing, ListContainers(DeploymentFilters(spec.ref)));
    // Pulling may take minutes: do it before taking the lock that serializes creation.
    if (!MissingReplicas(spec, existing).empty()) SLIPWAY_RETURN_IF_ERROR(EnsureImage(spec.image, spec.pull_auth));

    {
      // One creator at a time, so two concurrent identical requests cannot both create
      // replica i, and two deployments cannot be handed the same port.
      std::lock_guard lock(create_mu_);
      SLIPWAY_ASSIGN_OR_RETURN(existing, ListContainers(DeploymentFilters(spec.ref)));
      std::vector<int> missing = MissingReplicas(spec, existing);
      std::set<int> taken;
      if (!missing.empty()) {
        SLIPWAY_ASSIGN_OR_RETURN(auto all,
                                 ListContainers({LabelFilter(kLabelManagedBy, kManagedByValue)}));
        for (const auto& c : all) {
          if (c.port > 0) taken.insert(c.port);
        }
      }
      for (int index : missing) {
        SLIPWAY_ASSIGN_OR_RETURN(InstancePorts ports, PortsFor(spec, taken));
        taken.insert(ports.host);
        SLIPWAY_ASSIGN_OR_RETURN(std::string id, CreateContainer(spec, index, ports));
        StartContainer(id, ContainerName(spec.ref.deployment_id, index));
      }
      // A krane that stopped between creating and starting a container left it "created".
      for (const auto& c : existing) {
        if (c.state == "created") StartContainer(c.id, c.name);
      }
    }
    return GetDeployment(spec.ref);
  }

  uint64_t WaitForInstanceChange(const DeploymentRef& ref, uint64_t seen,
                                 std::chrono::milliseconds timeout) override {
    return Events().WaitForChange(ref.deployment_id, seen, timeout);
  }

  ContainerEventCounters EventCounters() const override {
    std::lock_guard lock(events_mu_);
    return events_ ? events_->counters() : ContainerEventCounters{};
  }

  Result<std::vector<Instance>> GetDeployment(const DeploymentRef& ref) override {
    SLIPWAY_ASSIGN_OR_RETURN(auto containers, ListContainers(DeploymentFilters(ref)));
    std::vector<Instance> instances;
    for (const auto& c : containers) {
      SLIPWAY_ASSIGN_OR_RETURN(std::optional<Instance> instance, DescribeContainer(c));
      if (instance) instances.push_back(std::move(*instance));
    }
    if (instances.empty()) {
      return Status::NotFound(
          fmt::format("deployment \"{}\" in namespace \"{}\" has no instances; create it with "
                      "CreateDeployment first",
                      ref.deployment_id, ref.ns));
    }
    return instances;
  }

  Result<int> DeleteDeployment(const DeploymentRef& ref) override {
    SLIPWAY_ASSIGN_OR_RETURN(auto containers, ListContainers(DeploymentFilters(ref)));
    int removed = 0;
    for (const auto& c : containers) {
      SLIPWAY_ASSIGN_OR_RETURN(auto reply,
                               engine_->Call("DELETE", "/containers/" + c.id + "?force=1&v=1"));
      if (reply.status == 204) {
        ++removed;
      } else if (reply.status != 404) {  // 404: someone removed it first, which is the goal
        return EngineClient::ErrorFor(reply, "removing container " + c.name);
      }
    }
    if (removed > 0) {
      spdlog::info("deleted deployment {} (namespace {}): {} containers removed", ref.deployment_id,
                   ref.ns, removed);
    }
    return removed;
  }

 private:
  static std::string LabelFilter(const char* label, const std::string& value) {
    return fmt::format("{}={}", label, value);
  }

  static std::vector<std::string> DeploymentFilters(const DeploymentRef& ref) {
    return {LabelFilter(kLabelManagedBy, kManagedByValue),
            LabelFilter(kLabelDeployment, ref.deployment_id), LabelFilter(kLabelNamespace, ref.ns)};
  }

  // The ports of a new instance; host ports in taken are never handed out again.
  Result<InstancePorts> PortsFor(const DeploymentSpec& spec, const std::set<int>& taken) const {
    InstancePorts ports;
    if (network_mode_ == NetworkMode::kBridge) {
      // The spec's port is inside the container: the host side is always krane's to choose.
      SLIPWAY_ASSIGN_OR_RETURN(ports.host, PickFreeLoopbackPort(taken));
      ports.container = spec.port != 0 ? spec.port : kDefaultBridgeContainerPort;
      return ports;
    }
    ports.host = spec.port;
    if (ports.host == 0) {
      SLIPWAY_ASSIGN_OR_RETURN(ports.host, PickFreeLoopbackPort(taken));
    }
    ports.container = ports.host;
    return ports;
  }

  static std::vector<int> MissingReplicas(const DeploymentSpec& spec,
                                          const std::vector<ListedContainer>& existing) {
    std::set<int> present;
    for (const auto& c : existing) present.insert(c.index);
    std::vector<int> missing;
    for (int i = 0; i < spec.replicas; ++i) {
      if (present.count(i) == 0) missing.push_back(i);
    }
    return missing;
  }

  // Every container (running or not) carrying all the given labels, ordered by replica number.
  Result<std::vector<ListedContainer>> ListContainers(const std::vector<std::string>& labels) {
    Json filters = {{"label", labels}};
    SLIPWAY_ASSIGN_OR_RETURN(
        Json list,
        engine_->CallJson("GET", "/containers/json?all=1&filters=" + net::UriEncode(filters.dump()),
                          "", "listing krane's containers"));
    std::vector<ListedContainer> out;
    if (!list.is_array()) return out;
    for (const Json& item : list) {
      ListedContainer c;
      c.id = item.value("Id", "");
      c.state = item.value("State", "");
      if (item.contains("Names") && item["Names"].is_array() && !item["Names"].empty()) {
        c.name = item["Names"][0].get<std::string>();
        if (!c.name.empty() && c.name[0] == '/') c.name.erase(0, 1);
      }
      const Json labels_json = item.value("Labels", Json::object());
      const std::string deployment = LabelOf(labels_json, kLabelDeployment);
      if (c.name.size() > deployment.size() + 1 && c.name.rfind(deployment + "-", 0) == 0) {
        c.index = ParseInt(std::string_view(c.name).substr(deployment.size() + 1), -1);
      }
      c.port = ParseInt(LabelOf(labels_json, kLabelPort), 0);
      out.push_back(std::move(c));
    }
    std::sort(out.begin(), out.end(), [](const ListedContainer& a, const ListedContainer& b) {
      return a.index != b.index ? a.index < b.index : a.name < b.name;
    });
    return out;
  }

  // Pulls the image unless dockerd already has it (a locally built image has no registry).
  Status EnsureImage(const std::string& image, const DeploymentSpec::PullAuth& auth) {
    SLIPWAY_ASSIGN_OR_RETURN(
        auto present, engine_->Call("GET", "/images/" + net::UriEncode(image, false) + "/json"));
    if (present.status == 200) return Status::Ok();
    if (present.status != 404) return EngineClient::ErrorFor(present, "looking up image " + image);

    auto [repo, tag] = SplitImageReference(image);
    spdlog::info("pulling image {} (not present locally)", image);
    net::Headers headers;
    if (!auth.server.empty()) {
      // The Engine API's credentials: base64url of {"username","password","serveraddress"}.
      std::string encoded = Base64Encode(
          Json{{"username", auth.username}, {"password", auth.password},
               {"serveraddress", auth.server}}
              .dump());
      std::replace(encoded.begin(), encoded.end(), '+', '-');
      std::replace(encoded.begin(), encoded.end(), '/', '_');
      headers.Set("X-Registry-Auth", encoded);
    }
    SLIPWAY_ASSIGN_OR_RETURN(auto pulled,
                             engine_->Call("POST",
                                           fmt::format("/images/create?fromImage={}&tag={}",
                                                       net::UriEncode(repo), net::UriEncode(tag)),
                                           "", std::chrono::minutes(10), headers));
    const std::string what = fmt::format(
        "image {} is not on this machine and pulling it failed (build it first, or push it to "
        "the registry krane pulls from)",
        image);
    if (pulled.status != 200) return EngineClient::ErrorFor(pulled, what);
    // A failed pull can still be HTTP 200, with an error line in the progress stream.
    size_t start = 0;
    while (start < pulled.body.size()) {
      size_t end = pulled.body.find('\n', start);
      if (end == std::string::npos) end = pulled.body.size();
      auto line = Json::parse(pulled.body.substr(start, end - start), nullptr, false);
      if (line.is_object() && line.contains("error")) {
        return Status::FailedPrecondition(fmt::format(
            "{}: {}", what,
            line["error"].is_string() ? line["error"].get<std::string>() : line["error"].dump()));
      }
      start = end + 1;
    }
    return Status::Ok();
  }

  Result<std::string> CreateContainer(const DeploymentSpec& spec, int index,
                                      const InstancePorts& ports) {
    const bool bridge = network_mode_ == NetworkMode::kBridge;
    const std::string name = ContainerName(spec.ref.deployment_id, index);
    Json env = Json::array();
    for (const auto& [key, value] : spec.env) {
      // PORT is krane's to give: it is where krane probes and where the gateway connects.
      if (key != "PORT") env.push_back(key + "=" + value);
    }
    env.push_back(fmt::format("PORT={}", ports.container));

    Json labels = {{kLabelManagedBy, kManagedByValue},
                   {kLabelDeployment, spec.ref.deployment_id},
                   {kLabelNamespace, spec.ref.ns},
                   {kLabelPort, std::to_string(ports.host)}};
    if (!spec.health_check_path.empty()) labels[kLabelHealthCheckPath] = spec.health_check_path;
    if (bridge) labels[kLabelContainerPort] = std::to_string(ports.container);

    Json host_config = {{"RestartPolicy", {{"Name", "unless-stopped"}}},
                        {"Init", true},
                        {"NetworkMode", bridge ? "bridge" : "host"},
                        {"PidsLimit", config_.pids_limit},
                        {"LogConfig",
                         {{"Type", "json-file"},
                          {"Config",
                           {{"max-size", std::to_string(config_.log_max_bytes)},
                            {"max-file", std::to_string(config_.log_max_files)}}}}}};
    const std::string exposed = fmt::format("{}/tcp", ports.container);
    if (bridge) {
      // Loopback only, like host mode: nothing off this machine reaches the instance.
      host_config["PortBindings"] = {
          {exposed,
           Json::array({{{"HostIp", kInstanceHost}, {"HostPort", std::to_string(ports.host)}}})}};
    }
    if (spec.memory_mib > 0) {
      const int64_t bytes = int64_t{spec.memory_mib} * 1024 * 1024;
      host_config["Memory"] = bytes;
      host_config["MemorySwap"] = bytes;  // equal to Memory: no swap, so the limit is real
    }
    if (spec.cpu_millicores > 0) host_config["NanoCpus"] = int64_t{spec.cpu_millicores} * 1'000'000;

    Json body = {
        {"Image", spec.image}, {"Env", env}, {"Labels", labels}, {"HostConfig", host_config}};
    if (bridge) body["ExposedPorts"] = {{exposed, Json::object()}};
    SLIPWAY_ASSIGN_OR_RETURN(
        auto reply,
        engine_->Call("POST", "/containers/create?name=" + net::UriEncode(name), body.dump()));
    if (reply.status == 409) {
      return Status::AlreadyExists(fmt::format(
          "a container named {} already exists but does not belong to deployment \"{}\" in "
          "namespace \"{}\"; choose another deployment id, or remove that container",
          name, spec.ref.deployment_id, spec.ref.ns));
    }
    if (reply.status != 201) return EngineClient::ErrorFor(reply, "creating container " + name);
    auto created = Json::parse(reply.body, nullptr, false);
    if (!created.is_object() || !created.contains("Id")) {
      return Status::Internal("dockerd created container " + name + " but reported no id");
    }
    if (bridge) {
      spdlog::info("created container {} ({}) on port {} (published from container port {})", name,
                   spec.image, ports.host, ports.container);
    } else {
      spdlog::info("created container {} ({}) on port {}", name, spec.image, ports.host);
    }
    return created["Id"].get<std::string>();
  }

  // A start that fails (say, the entrypoint is missing from the image) leaves the error in the
  // container's State, where GetDeployment reports it as FAILED; so it is logged, not returned.
  void StartContainer(const std::string& id, const std::string& name) {
    auto reply = engine_->Call("POST", "/containers/" + id + "/start");
    if (!reply.ok()) {
      spdlog::warn("starting container {}: {}", name, reply.status().message());
    } else if (reply->status != 204 && reply->status != 304) {
      spdlog::warn("starting container {}: {}", name,
                   EngineClient::ErrorFor(*reply, "start").message());
    }
  }

  // The instance a container is, or nullopt when it vanished since it was listed.
  Result<std::optional<Instance>> DescribeContainer(const ListedContainer& c) {
    auto inspect = engine_->CallJson("GET", "/containers/" + c.id + "/json", "",
                                     "inspecting container " + c.name);
    if (!inspect.ok()) {
      if (inspect.status().code() == Code::kNotFound) return std::optional<Instance>();
      return inspect.status();
    }
    const Json labels = inspect->contains("Config")
                            ? (*inspect)["Config"].value("Labels", Json::object())
                            : Json::object();
    Instance instance;
    instance.id = c.name;
    const int port = ParseInt(LabelOf(labels, kLabelPort), 0);
    instance.address = fmt::format("{}:{}", kInstanceHost, port);

    ContainerVerdict verdict = JudgeContainer(*inspect);
    switch (verdict.phase) {
      case ContainerVerdict::Phase::kStarting:
        instance.status = InstanceStatus::kPending;
        instance.reason = verdict.reason;
        break;
      case ContainerVerdict::Phase::kTerminating:
        instance.status = InstanceStatus::kTerminating;
        instance.reason = verdict.reason;
        break;
      case ContainerVerdict::Phase::kFailed:
        instance.status = InstanceStatus::kFailed;
        instance.reason = WithLogTail(verdict.reason, c);
        break;
      case ContainerVerdict::Phase::kProbe: {
        // A published port (bridge mode) is answered by docker-proxy before the app listens.
        const ProbeRoute route = LabelOf(labels, kLabelContainerPort).empty()
                                     ? ProbeRoute::kDirect
                                     : ProbeRoute::kForwarded;
        ReadinessResult probe =
            ProbeReadiness(kInstanceHost, port, LabelOf(labels, kLabelHealthCheckPath),
                           kDefaultProbeTimeout, route);
        if (probe.ready) {
          instance.status = InstanceStatus::kRunning;
          // Answering again after a crash: what ended its last run is worth keeping in view.
          if (verdict.restart_count > 0) instance.reason = RestartedNote(verdict, c);
        } else if (verdict.crashed_before) {
          instance.status = InstanceStatus::kFailed;
          instance.reason = WithLogTail(CrashLoopReason(verdict, c), c);
        } else {
          instance.status = InstanceStatus::kPending;
          instance.reason = "running but not ready: " + probe.detail;
        }
        break;
      }
    }
    return std::optional<Instance>(std::move(instance));
  }

  // "restarted once by its restart policy; its last run exited with exit code 7"
  std::string RestartedNote(const ContainerVerdict& verdict, const ListedContainer& c) {
    std::optional<LastExit> last = LastExitOf(c);
    const std::string times =
        verdict.restart_count == 1 ? "once" : fmt::format("{} times", verdict.restart_count);
    if (!last) return fmt::format("restarted {} by its restart policy", times);
    return fmt::format("restarted {} by its restart policy; its last run {} {}", times,
                       verdict.oom_killed || last->oom_killed
                           ? "ran out of memory (OOM-killed), exit code"
                           : "exited with exit code",
                       last->exit_code);
  }

  // A container dockerd restarted has forgotten its exit code; its die events still have it.
  std::optional<LastExit> LastExitOf(const ListedContainer& c) {
    // until=now (to the nanosecond) makes dockerd answer with what it has and close the stream.
    const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    const Json filters = {{"container", Json::array({c.id})},
                          {"type", Json::array({"container"})},
                          {"event", Json::array({"die", "oom"})}};
    auto reply = engine_->Call(
        "GET",
        fmt::format("/events?since={}&until={}.{:09d}&filters={}", now_ns / 1'000'000'000 - 3600,
                    now_ns / 1'000'000'000, now_ns % 1'000'000'000, net::UriEncode(filters.dump())),
        "", std::chrono::seconds(5));
    if (!reply.ok() || reply->status != 200) return std::nullopt;
    return LastExitFromEvents(reply->body);
  }

  std::string CrashLoopReason(const ContainerVerdict& verdict, const ListedContainer& c) {
    if (verdict.restart_count == 0) return verdict.reason;
    std::optional<LastExit> last = LastExitOf(c);
    if (!last) return verdict.reason;
    return fmt::format("{} {}, {}",
                       verdict.oom_killed || last->oom_killed
                           ? "out of memory (OOM-killed), exit code"
                           : "exited with exit code",
                       last->exit_code, CrashLoopPhrase(verdict.restart_count));
  }

  Result<std::vector<LogLine>> Logs(const DeploymentRef& ref, const LogQuery& q) override {
    SLIPWAY_ASSIGN_OR_RETURN(auto containers, ListContainers(DeploymentFilters(ref)));
    if (containers.empty()) {
      return Status::NotFound("deployment " + ref.deployment_id + " has no instances on krane");
    }
    std::vector<LogLine> lines;
    bool found = false;
    for (const auto& c : containers) {
      if (q.instance >= 0 && c.index != q.instance) continue;
      found = true;
      // dockerd's since is inclusive and in (fractional) seconds: lines at exactly after_ns
      // come back and are dropped below.
      std::string path = fmt::format("/containers/{}/logs?stdout=1&stderr=1&timestamps=1", c.id);
      if (q.after_ns > 0) {
        path += fmt::format("&since={}.{:09d}", q.after_ns / 1'000'000'000,
                            q.after_ns % 1'000'000'000);
      }
      if (q.tail > 0) path += fmt::format("&tail={}", q.tail);
      SLIPWAY_ASSIGN_OR_RETURN(auto reply, engine_->Call("GET", path, "", std::chrono::seconds(10)));
      if (reply.status != 200) return EngineClient::ErrorFor(reply, "reading the log of " + c.name);
      for (auto& line : TimestampedLogLines(DemultiplexLogFrames(reply.body))) {
        if (line.time_ns <= q.after_ns) continue;
        line.instance_id = c.name;
        lines.push_back(std::move(line));
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

  // "exited with exit code 3; last log lines:\nboom"
  std::string WithLogTail(const std::string& reason, const ListedContainer& c) {
    auto reply = engine_->Call("GET", fmt::format("/containers/{}/logs?stdout=1&stderr=1&tail={}",
                                                  c.id, kFailureLogLines));
    if (!reply.ok()) return reason + "; its log could not be read: " + reply.status().message();
    if (reply->status != 200) {
      return reason + "; its log could not be read: " +
             EngineClient::ErrorFor(*reply, "reading the log").message();
    }
    std::string tail = LastLines(DemultiplexLogs(reply->body), kFailureLogLines);
    if (tail.empty()) return reason + "; it wrote nothing to stdout or stderr";
    return reason + "; last log lines:\n" + BoundLogTail(std::move(tail));
  }

  // Started by the first watcher: a krane nobody watches keeps no stream open.
  ContainerEvents& Events() {
    std::lock_guard lock(events_mu_);
    if (!events_) {
      events_ = std::make_unique<ContainerEvents>(
          *engine_, LabelFilter(kLabelManagedBy, kManagedByValue), kLabelDeployment);
    }
    return *events_;
  }

  KraneBackendConfig config_;
  NetworkMode network_mode_;
  std::unique_ptr<EngineClient> engine_;
  std::mutex create_mu_;
  mutable std::mutex events_mu_;
  std::unique_ptr<ContainerEvents> events_;  // after engine_: stopped before it goes
};

}  // namespace

Result<std::unique_ptr<KraneBackend>> MakeDockerBackend(const KraneBackendConfig& config) {
  SLIPWAY_ASSIGN_OR_RETURN(NetworkMode network_mode, ParseNetworkMode(config.network_mode));
  SLIPWAY_ASSIGN_OR_RETURN(auto engine, EngineClient::Connect(config.docker_host));
  return std::unique_ptr<KraneBackend>(
      std::make_unique<DockerBackend>(config, network_mode, std::move(engine)));
}

}  // namespace slipway::krane::docker
