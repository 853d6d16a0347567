// The Docker krane backend: one container per replica on the local dockerd, host networking.
//
// Containers are named "<deployment>-<i>" and labelled slipway.managed-by=krane,
// slipway.deployment=<id>, slipway.namespace=<ns>, slipway.port=<port> (and
// slipway.health-check-path when set), so every answer is rebuilt from dockerd alone: krane
// keeps no state of its own and a restarted krane sees the same deployments.
//
// Each instance gets its own free loopback port (unless the spec names one), passed as PORT;
// ports already labelled on krane's containers are never handed out twice. Limits:
// HostConfig.Memory = MemorySwap (no swap), NanoCpus, PidsLimit; RestartPolicy unless-stopped;
// Init (docker-init as PID 1 forwards SIGTERM to a static binary); NetworkMode host.
#pragma once

#include <memory>

#include "base/status.h"
#include "krane/backend.h"

namespace slipway::krane::docker {

// Labels krane writes on every container it creates.
inline constexpr const char* kLabelManagedBy = "slipway.managed-by";
inline constexpr const char* kLabelDeployment = "slipway.deployment";
inline constexpr const char* kLabelNamespace = "slipway.namespace";
inline constexpr const char* kLabelPort = "slipway.port";
inline constexpr const char* kLabelHealthCheckPath = "slipway.health-check-path";

Result<std::unique_ptr<KraneBackend>> MakeDockerBackend(const KraneBackendConfig& config);

}  // namespace slipway::krane::docker
