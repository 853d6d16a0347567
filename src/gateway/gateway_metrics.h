// What the gateway counts, one call per request (Proxy::Serve makes it):
//   slipway_gateway_requests_total{host,code}         requests answered, by routed host and
//                                                     the status the client got
//   slipway_gateway_request_duration_seconds{host}    from the request's arrival to the end of
//                                                     its response
//   slipway_gateway_upstream_retries_total{host}      requests retried on another instance
//                                                     after one refused the connection
//   slipway_gateway_upstream_errors_total{host,kind}  requests whose instance failed them:
//                                                     kind "unreachable" (502), "timeout" (504)
//                                                     or "broken" (the response stopped midway)
// host is the routed host, or "" for requests no deployment is routed to (404, 400), so what a
// client writes in Host cannot grow the label set. Thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/metrics.h"

namespace slipway::gateway {

struct ServedRequest {
  std::string_view routed_host;  // empty: no deployment is routed to the request's host
  int status = 0;                // what the client got (101 for a switched protocol)
  double seconds = 0;
  int retries = 0;                  // instances tried after the first refused
  std::string_view upstream_error;  // "", "unreachable", "timeout" or "broken"
};

class GatewayMetrics {
 public:
  explicit GatewayMetrics(metrics::Registry& registry);
  void RequestServed(const ServedRequest& request);

 private:
  // Tells this instance's entries in each thread's cache (RequestServed) from another's.
  const uint64_t id_;
  metrics::CounterFamily& requests_;
  metrics::HistogramFamily& duration_;
  metrics::CounterFamily& retries_;
  metrics::CounterFamily& upstream_errors_;
};

}  // namespace slipway::gateway
