// KraneBackend: runs a deployment's instances on a container engine and reports how they are.
//
// Implementations: docker/ (Docker Engine API, one container per replica, host networking)
// and, with the production issue, kubernetes/ (headless Service + StatefulSet). MakeKraneBackend()
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
// Implementations are thread-safe: the service calls them from many connection threads.
#pragma once

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
  std::string deployment_id;  // [a-z0-9_-], starts with a letter or digit
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
};

enum class InstanceStatus { kPending, kRunning, kTerminating, kFailed };

std::string_view InstanceStatusName(InstanceStatus status);  // "RUNNING"

struct Instance {
  std::string id;       // "<deployment_id>-<i>"
  std::string address;  // "127.0.0.1:41234": where the instance answers
  InstanceStatus status = InstanceStatus::kPending;
  std::string reason;  // why it is FAILED (or not yet RUNNING); empty when RUNNING
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
};

// InvalidArgument for an unknown backend name or network mode, Unimplemented for "kubernetes"
// (not built yet).
Result<std::unique_ptr<KraneBackend>> MakeKraneBackend(const KraneBackendConfig& config);

}  // namespace slipway::krane
