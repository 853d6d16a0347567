#include "krane/backend.h"

#include <thread>

#include "krane/docker/docker_backend.h"
#include "krane/kubernetes/kubernetes_backend.h"

namespace slipway::krane {

std::string_view InstanceStatusName(InstanceStatus status) {
  switch (status) {
    case InstanceStatus::kPending:
      return "PENDING";
    case InstanceStatus::kRunning:
      return "RUNNING";
    case InstanceStatus::kTerminating:
      return "TERMINATING";
    case InstanceStatus::kFailed:
      return "FAILED";
  }
  return "UNKNOWN";
}

uint64_t KraneBackend::WaitForInstanceChange(const DeploymentRef&, uint64_t seen,
                                             std::chrono::milliseconds timeout) {
  if (seen == 0) return 1;
  std::this_thread::sleep_for(timeout);
  return seen;
}

Result<std::unique_ptr<KraneBackend>> MakeKraneBackend(const KraneBackendConfig& config) {
  if (config.backend == "docker") return docker::MakeDockerBackend(config);
  if (config.backend == "kubernetes") return kubernetes::MakeKubernetesBackend(config);
  return Status::InvalidArgument("unknown krane backend \"" + config.backend +
                                 "\"; set KRANE_BACKEND to docker or kubernetes");
}

}  // namespace slipway::krane
