// The Docker build backend: builds through the Engine API of a local dockerd.
//
// POST /build with remote=<presigned GET URL>, so dockerd downloads the context itself and the
// bytes never pass through ctrl. The builder follows DOCKER_BUILDER: "buildkit" (version=2),
// "classic" (version=1), or "auto": BuildKit, and the classic builder from the first time the
// daemon refuses a BuildKit request with an HTTP error (BuildKit's own failures, a bad
// Dockerfile included, arrive as HTTP 200 and are never retried with the other builder).
// dockerd 20.10 builds version=2 without a session, so "auto" is BuildKit there. RUN steps use
// host networking (no bridge exists on our machines). When a registry is configured the image
// is tagged <registry>/<project>:<tag> and pushed. A missing Dockerfile fails with a message
// naming its path in the context.
#pragma once

#include <memory>

#include "ctrl/build/backend.h"

namespace slipway::ctrl::build::docker {

Result<std::unique_ptr<BuildBackend>> MakeDockerBackend(const BuildBackendConfig& config);

}  // namespace slipway::ctrl::build::docker
