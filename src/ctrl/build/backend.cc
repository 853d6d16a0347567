#include "ctrl/build/backend.h"

#include "ctrl/build/docker/docker_backend.h"

namespace slipway::ctrl::build {

Result<std::unique_ptr<BuildBackend>> MakeBuildBackend(const BuildBackendConfig& config) {
  if (config.backend == "docker") return docker::MakeDockerBackend(config);
  return Status::InvalidArgument("unknown build backend \"" + config.backend +
                                 "\" (set BUILD_BACKEND to docker)");
}

}  // namespace slipway::ctrl::build
