#include "krane/backend.h"

#include "krane/docker/docker_backend.h"

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

Result<std::unique_ptr<KraneBackend>> MakeKraneBackend(const KraneBackendConfig& config) {
  if (config.backend == "docker") return docker::MakeDockerBackend(config);
  if (config.backend == "kubernetes") {
    return Status::Unimplemented(
        "the kubernetes krane backend (headless Service + StatefulSet through the API server) is "
        "not built yet: it is part of the production issue (Kubernetes, PostgreSQL, Depot); "
        "set KRANE_BACKEND=docker to run instances on the local dockerd");
  }
  return Status::InvalidArgument("unknown krane backend \"" + config.backend +
                                 "\"; set KRANE_BACKEND to docker (or kubernetes, once built)");
}

}  // namespace slipway::krane
