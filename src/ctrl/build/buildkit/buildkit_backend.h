// The buildkit build backend: builds on a BuildKit daemon the operator runs (BUILDKIT_HOST, a
// unix socket or tcp:// with mutual TLS) and pushes every image to REGISTRY. What ctrl records,
// and krane runs, is the pushed reference pinned by digest. Each project has its own layer cache
// in the registry (<REGISTRY>/<cache repository>:<project id>, mode=max), imported and exported
// by every build of that project and of no other, so a fresh or a different daemon starts warm.
// Registry credentials (REGISTRY_USERNAME/REGISTRY_PASSWORD or docker's config.json) are served
// to the daemon through a session, attached only when credentials exist.
#pragma once

#include <memory>

#include "ctrl/build/backend.h"

namespace slipway::ctrl::build::buildkit {

Result<std::unique_ptr<BuildBackend>> MakeBuildkitBackend(const BuildBackendConfig& config);

// "<registry>/<repository>:<project id>": the registry cache of one project.
std::string CacheRef(const std::string& registry, const std::string& repository,
                     const std::string& project_id);

}  // namespace slipway::ctrl::build::buildkit
