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

inline constexpr std::chrono::milliseconds kDefaultProbeTimeout{800};

// How the probe reaches the app.
enum class ProbeRoute {
  kDirect,  // the app itself listens on the address (host networking)
  // A forwarder listens there (docker-proxy for a published port): it accepts every connection
  // and closes it at once when the app behind it does not accept. A TCP probe then also needs
  // the connection to stay open for a moment (kForwardedHold) or the peer to send data.
  kForwarded,
};
inline constexpr std::chrono::milliseconds kForwardedHold{200};

// host is a literal IPv4 address ("127.0.0.1").
ReadinessResult ProbeReadiness(const std::string& host, int port,
                               const std::string& health_check_path,
                               std::chrono::milliseconds timeout = kDefaultProbeTimeout,
                               ProbeRoute route = ProbeRoute::kDirect);

}  // namespace slipway::krane
