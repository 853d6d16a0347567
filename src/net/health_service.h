// slipway.health.v1.HealthService: the check every slipway process answers, so load balancers,
// `slipway dev` and tests can tell that a process is up (and how long it has been).
#pragma once

#include <chrono>

#include "base/clock.h"
#include "net/connect.h"

namespace slipway::net {

// Registers HealthService.Check on router. The answer is SERVING with the seconds since
// `started` on `clock`; both must outlive the router. Check is open to every caller: it must
// keep working before anyone holds a token.
void RegisterHealthService(ConnectRouter& router, const Clock& clock,
                           std::chrono::system_clock::time_point started);

// The procedure path of Check: "/slipway.health.v1.HealthService/Check".
std::string HealthCheckProcedure();

}  // namespace slipway::net
