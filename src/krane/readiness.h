// Is an instance ready to take traffic? A TCP connect to its address, or, when the deployment
// has a health check path, an HTTP GET that answers 2xx or 3xx. Shared by backends whose
// engine does not judge readiness itself (Docker); Kubernetes uses pod conditions instead.
//
// Thread-safe; every probe is bounded by its timeout, so a hung app cannot stall a caller.
#pragma once

#include <chrono>
#include <string>

namespace slipway::krane {

struct ReadinessResult {
  bool ready = false;
  // Why not ready, as a phrase: "nothing accepts connections on 127.0.0.1:4100 yet".
  std::string detail;
};

// host is a literal IPv4 address ("127.0.0.1").
ReadinessResult ProbeReadiness(const std::string& host, int port,
                               const std::string& health_check_path,
                               std::chrono::milliseconds timeout = std::chrono::milliseconds(800));

}  // namespace slipway::krane
