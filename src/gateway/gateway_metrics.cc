#include "gateway/gateway_metrics.h"

#include <atomic>
#include <charconv>
#include <string>

namespace slipway::gateway {

namespace {
std::atomic<uint64_t> next_id{1};

// The children of the last request a thread counted: nearly every request is for the same host
// with the same status as the one before, and a family's lookup builds a key and takes a lock
// that every loop thread shares.
struct LastServed {
  uint64_t owner = 0;  // GatewayMetrics::id_; 0: none yet
  std::string host;
  int status = 0;
  metrics::Counter* requests = nullptr;
  metrics::Histogram* duration = nullptr;
};
thread_local LastServed last_served;
}  // namespace

GatewayMetrics::GatewayMetrics(metrics::Registry& registry)
    : id_(next_id.fetch_add(1)),
      requests_(registry.AddCounter("slipway_gateway_requests_total",
                                    "Requests answered, by routed host (\"\" when none) and the "
                                    "HTTP status the client got",
                                    {"host", "code"})),
      duration_(registry.AddHistogram("slipway_gateway_request_duration_seconds",
                                      "Time from a request's arrival to the end of its response, "
                                      "by routed host",
                                      {"host"})),
      retries_(registry.AddCounter("slipway_gateway_upstream_retries_total",
                                   "Requests sent to another instance after one refused the "
                                   "connection, by routed host",
                                   {"host"})),
      upstream_errors_(registry.AddCounter(
          "slipway_gateway_upstream_errors_total",
          "Requests an instance failed: unreachable (502), timeout (504) or broken (the "
          "response stopped midway), by routed host",
          {"host", "kind"})) {}

void GatewayMetrics::RequestServed(const ServedRequest& r) {
  LastServed& last = last_served;
  if (last.owner != id_ || last.status != r.status || last.host != r.routed_host) {
    char code[8];
    auto end = std::to_chars(code, code + sizeof code, r.status).ptr;
    last.requests = &requests_.With({r.routed_host, std::string_view(code, end - code)});
    last.duration = &duration_.With({r.routed_host});
    last.owner = id_;
    last.status = r.status;
    last.host = r.routed_host;
  }
  last.requests->Increment();
  last.duration->Observe(r.seconds);
  if (r.retries > 0) retries_.With({r.routed_host}).Increment(r.retries);
  if (!r.upstream_error.empty()) upstream_errors_.With({r.routed_host, r.upstream_error}).Increment();
}

}  // namespace slipway::gateway
