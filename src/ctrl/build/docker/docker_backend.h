// The Docker build backend: builds through the Engine API of a local dockerd.
//
// POST /build with remote=<presigned GET URL>, so dockerd downloads the context itself and the
// bytes never pass through ctrl. BuildKit (version=2) when the daemon offers it, the classic
// builder otherwise. RUN steps use host networking (no bridge exists on our machines). When a
// registry is configured the image is tagged <registry>/<project>:<tag> and pushed.
#pragma once

#include <memory>

#include "ctrl/build/backend.h"

namespace slipway::ctrl::build::docker {

Result<std::unique_ptr<BuildBackend>> MakeDockerBackend(const BuildBackendConfig& config);

}  // namespace slipway::ctrl::build::docker
