#include "ctrl/build/backend.h"

#include "ctrl/build/buildkit/buildkit_backend.h"
#include "ctrl/build/depot/depot_backend.h"
#include "ctrl/build/docker/docker_backend.h"

namespace slipway::ctrl::build {

Result<std::unique_ptr<BuildBackend>> MakeBuildBackend(const BuildBackendConfig& config,
                                                       depot::DepotRecords* depot_records) {
  if (config.backend == "docker") return docker::MakeDockerBackend(config);
  if (config.backend == "buildkit") return buildkit::MakeBuildkitBackend(config);
  if (config.backend == "depot") return depot::MakeDepotBackend(config, depot_records);
  return Status::InvalidArgument("unknown build backend \"" + config.backend +
                                 "\" (set BUILD_BACKEND to docker, buildkit or depot)");
}

}  // namespace slipway::ctrl::build
