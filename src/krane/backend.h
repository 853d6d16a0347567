// KraneBackend: runs a deployment's instances on a container engine and reports how they are.
//
// Implementations: docker/ (Docker Engine API, one container per replica, host networking)
// and kubernetes/ (headless Service + StatefulSet through the API server). MakeKraneBackend()
// picks one from configuration (KRANE_BACKEND). The krane service (krane_service.h) validates
// requests before they reach a backend, so backends may assume a valid DeploymentSpec.
//
// Promises every backend keeps:
//  - CreateDeployment is idempotent: instances that already exist are returned unchanged and
//    only missing replicas are created, so the same request twice changes nothing.
//  - An instance is kRunning only when it answers (TCP connect, or HTTP 2xx/3xx on the health
//    check path), never merely because its process started.
//  - An instance that exited or was OOM-killed is kFailed at once, with a reason naming the exit
//    code and ending with the last lines of its log; a crash loop is kFailed, not kPending.
//  - DeleteDeployment is idempotent: deleting what is gone succeeds and removes nothing.
//  - WaitForInstanceChange wakes as soon as the engine reports a change to a deployment's
//    instances (Docker's /events, a Kubernetes watch); a broken event stream is reopened, and
//    every version it may have missed counts as changed, so a caller never sleeps through one.
// Implementations are thread-safe: the service calls them from many connection threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace slipway::krane {

// Which deployment a call is about. Deployment ids are unique across namespaces.
struct DeploymentRef {
  std::string ns;             // groups deployments; the Kubernetes namespace on that backend
  std::string deployment_id;  // [A-Za-z0-9_-], starts with a letter or digit
};

struct DeploymentSpec {
  DeploymentRef ref;
  std::string image;  // "app:tag" or "127.0.0.1:5000/app:tag"
  int replicas = 1;
  int cpu_millicores = 0;  // 1000 = one CPU
  int memory_mib = 0;
  std::map<std::string, std::string> env;
  // The port the app listens on; 0 lets krane pick a free loopback port per instance.
  int port = 0;
  std::string health_check_path;  // "/healthz"; empty: a TCP connect is enough
  // Credentials for pulling image; an empty server: anonymous.
  struct PullAuth {
    std::string server, username, password;
  } pull_auth;
};

enum class InstanceStatus { kPending, kRunning, kTerminating, kFailed };

std::string_view InstanceStatusName(InstanceStatus status);  // "RUNNING"

struct Instance {
  std::string id;       // "<deployment_id>-<i>"
  std::string address;  // "127.0.0.1:41234": where the instance answers
  InstanceStatus status = InstanceStatus::kPending;
  // Why it is FAILED (or not yet RUNNING). Empty when RUNNING, but for an instance the engine
  // restarted: then what ended its last run ("restarted once by its restart policy; its last
  // run exited with exit code 7").
  std::string reason;
};

// Which log lines of a deployment to read.
struct LogQuery {
  int instance = -1;     // the replica number; -1: every instance
  int64_t after_ns = 0;  // only lines written after this (Unix nanoseconds); 0: from the start
  int tail = 0;          // per instance, only the last this many; 0: all of them
};

struct LogLine {
  std::string instance_id;
  int64_t time_ns = 0;  // when the app wrote it (Unix nanoseconds)
  std::string stream;   // "stdout" or "stderr"
  std::string text;     // without the line ending
};

class KraneBackend {
 public:
  virtual ~KraneBackend() = default;
  virtual std::string_view name() const = 0;

  // Creates and starts the instances that do not exist yet; returns all of them as they are
  // right after (usually kPending).
  virtual Result<std::vector<Instance>> CreateDeployment(const DeploymentSpec& spec) = 0;
  // The deployment's instances ordered by id; NotFound when it has none.
  virtual Result<std::vector<Instance>> GetDeployment(const DeploymentRef& ref) = 0;
  // Removes every instance; returns how many were removed (0 when none existed).
  virtual Result<int> DeleteDeployment(const DeploymentRef& ref) = 0;
  // Blocks until the backend learns that ref's instances may have changed after change version
  // `seen`, or until timeout passes; returns the version now (`seen` itself when nothing
  // happened). Version 0 is "before anything": a first call with it returns at once. Only a
  // hint to read the instances again (GetDeployment is the truth), and coarse: a change to
  // another deployment may wake it too. A started process becomes RUNNING only once its
  // readiness probe passes, which is no engine event: callers probe again while instances are
  // PENDING (FollowDeployment in instance_follow.h does). The default has no event source: it
  // waits the whole timeout, so callers fall back to polling.
  virtual uint64_t WaitForInstanceChange(const DeploymentRef& ref, uint64_t seen,
                                         std::chrono::milliseconds timeout);
  // The instances' runtime log lines, oldest first. A caller follows a log by asking again
  // with after_ns set to the last line's time.
  virtual Result<std::vector<LogLine>> Logs(const DeploymentRef& ref, const LogQuery& query) {
    return Status::Unimplemented(std::string(name()) + " backend has no runtime logs");
  }
  // Whether the engine underneath answers now (dockerd's /_ping, the API server's /readyz),
  // within a few seconds: what krane's /readyz reports. A backend with nothing to ask is ready.
  virtual Status Ping() { return Status::Ok(); }
};

struct KraneBackendConfig {
  std::string backend = "docker";                           // KRANE_BACKEND
  std::string docker_host = "unix:///var/run/docker.sock";  // DOCKER_HOST
  int pids_limit = 4096;  // per container; a fork bomb stays inside its instance
  // How the docker backend networks containers (KRANE_NETWORK_MODE):
  //  "host":   the app shares the machine's network and binds the loopback port krane gives it
  //            as PORT.
  //  "bridge": the app binds its own port (DeploymentSpec::port, else 8080) inside its network
  //            namespace, passed as PORT; dockerd publishes it on a krane-chosen loopback port.
  // Either way the instance answers on 127.0.0.1:<krane's port>.
  std::string network_mode = "host";
  // Every container logs to json-file files rotated at log_max_bytes, at most log_max_files of
  // them (KRANE_LOG_MAX_SIZE, KRANE_LOG_MAX_FILES): an app that writes its log as fast as it
  // can holds at most their product on dockerd's disk, whatever dockerd's own default driver.
  uint64_t log_max_bytes = 10ull << 20;
  int log_max_files = 3;

  // The kubernetes backend (kubernetes/kubernetes_backend.h).
  std::string kubeconfig;  // --kubeconfig / KUBECONFIG; empty: in-cluster, else ~/.kube/config
  std::string kube_namespace;  // KRANE_NAMESPACE; empty: the context's namespace, else "default"
  bool namespace_per_workspace = false;  // KRANE_NAMESPACE_PER_WORKSPACE: one namespace per ns
  bool host_network = false;             // KRANE_HOST_NETWORK: pods share the node's network
  std::string address_mode;  // KRANE_ADDRESS: dns | pod-ip; empty: pod-ip with host network
  std::string cluster_domain = "cluster.local";  // KRANE_CLUSTER_DOMAIN, for dns addresses
  std::string node_selector;      // KRANE_NODE_SELECTOR: "key=value,..." for every pod
  std::string tolerations;        // KRANE_TOLERATIONS: "key=value:NoSchedule,..."
  std::string image_pull_secret;  // KRANE_IMAGE_PULL_SECRET: a dockerconfigjson Secret's name
  int termination_grace_seconds = 5;  // KRANE_TERMINATION_GRACE_SECONDS
};

// InvalidArgument for an unknown backend name or network mode; for "kubernetes", the errors of
// reading its kubeconfig.
Result<std::unique_ptr<KraneBackend>> MakeKraneBackend(const KraneBackendConfig& config);

}  // namespace slipway::krane
