#include "net/health_service.h"

#include "slipway/health/v1/health.pb.h"

namespace slipway::net {

namespace health = slipway::health::v1;

std::string HealthCheckProcedure() {
  return ConnectProcedure("slipway.health.v1.HealthService", "Check");
}

void RegisterHealthService(ConnectRouter& router, const Clock& clock,
                           std::chrono::system_clock::time_point started) {
  router.Unary<health::CheckRequest, health::CheckResponse>(
      HealthCheckProcedure(), [&clock, started](CallContext&, const health::CheckRequest&,
                                                health::CheckResponse* response) {
        auto uptime = std::chrono::duration_cast<std::chrono::seconds>(clock.Now() - started);
        response->set_status(health::CheckResponse::SERVING_STATUS_SERVING);
        // A clock set backwards must not report a negative uptime.
        response->set_uptime_seconds(std::max<int64_t>(0, uptime.count()));
        return Status::Ok();
      });
}

}  // namespace slipway::net
