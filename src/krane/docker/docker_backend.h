// The Docker krane backend: one container per replica on the local dockerd, host networking
// (or, with network_mode "bridge", a published port on loopback).
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
//
// With network_mode "bridge" the container gets NetworkMode bridge; the app listens on its own
// port (the spec's, else 8080) inside its network namespace, passed as PORT and labelled
// slipway.container-port, and dockerd publishes it on krane's loopback port only
// (PortBindings HostIp 127.0.0.1). slipway.port, the address and the readiness probe stay on
// that loopback port; replicas may share the spec's port, since each has its own namespace.
// A published port accepts connections (docker-proxy) before the app does, so a TCP probe there
// also needs the connection to stay open (ProbeRoute::kForwarded).
//
// Changes are reported from dockerd's /events (container_events.h), followed from the first
// WaitForInstanceChange on.
#pragma once

#include <memory>

#include "base/status.h"
#include "krane/backend.h"
#include "krane/docker/container_events.h"

namespace slipway::krane::docker {

// Labels krane writes on every container it creates.
inline constexpr const char* kLabelManagedBy = "slipway.managed-by";
inline constexpr const char* kLabelDeployment = "slipway.deployment";
inline constexpr const char* kLabelNamespace = "slipway.namespace";
inline constexpr const char* kLabelPort = "slipway.port";
inline constexpr const char* kLabelHealthCheckPath = "slipway.health-check-path";
// Only with network_mode "bridge": the port the app binds inside its container.
inline constexpr const char* kLabelContainerPort = "slipway.container-port";
// The port the app binds inside its container in bridge mode when the spec names none.
inline constexpr int kDefaultBridgeContainerPort = 8080;

// What tests read beyond KraneBackend: the event stream's counters (it opens on the first
// WaitForInstanceChange).
class DockerBackendView {
 public:
  virtual ~DockerBackendView() = default;
  virtual ContainerEventCounters EventCounters() const = 0;
};

// InvalidArgument, saying what is accepted, for a network_mode other than "host" or "bridge".
Result<std::unique_ptr<KraneBackend>> MakeDockerBackend(const KraneBackendConfig& config);

}  // namespace slipway::krane::docker
