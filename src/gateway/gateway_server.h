// The gateway (data plane) as one object: the event-driven proxy engine (net/proxy_server.h)
// with the Proxy as its policy, routed by the table a RouteRefresher keeps current from the
// partition database.
// `slipway run gateway` runs one; `slipway dev` runs one in-process.
//
// Promises: Start returns once the listener is bound and the routes are loaded (so the first
// request is already routed correctly); Shutdown stops accepting, lets in-flight requests
// finish within the grace period, stops the refresher, and is idempotent (the destructor calls
// it).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "db/database.h"

namespace slipway::gateway {

struct GatewayOptions {
  std::string listen = "127.0.0.1:8080";  // host:port; port 0 picks a free one
  // The partition database URL (SQLite path or postgresql://...), opened and migrated at start.
  std::string partition_database;
  // An already open (and migrated: db::OpenPartition) partition database to use instead;
  // slipway dev shares its own. Not owned; must outlive the gateway.
  db::Database* partition = nullptr;
  // How often routes are reloaded: a route change is served within about this long.
  std::chrono::milliseconds refresh_interval{250};
  std::chrono::milliseconds upstream_connect_timeout{5'000};
  // An upstream that sends nothing for this long fails its request.
  std::chrono::milliseconds upstream_idle_timeout{60'000};
  // How long an instance that refused a connection is passed over while others are available.
  std::chrono::milliseconds refused_instance_cooldown{2'000};
  // Event-loop threads; 0: one per core.
  size_t threads = 0;
  size_t max_connections = 16384;
  size_t max_header_bytes = 64 * 1024;
  uint64_t max_body_bytes = UINT64_MAX;
  // Against slow clients (slowloris): the whole request head within header_timeout of its first
  // byte; silence mid-body, or not reading the response, for client_timeout; an idle keep-alive
  // connection closed after client_idle_timeout.
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds client_timeout{60'000};
  std::chrono::milliseconds client_idle_timeout{60'000};
  // Idle connections kept open per instance (and event-loop thread) for the next requests.
  size_t upstream_keepalive = 1024;
  // One info log line per request (ProxyOptions::access_log).
  bool access_log = false;
  // Where /healthz, /readyz (the partition database answers) and /metrics are served: a
  // listener of their own, because on the routed port every path belongs to the apps (an app
  // has its own /healthz). Empty: not served. Keep it off the public interface.
  std::string admin_listen;
};

class GatewayServer {
 public:
  static Result<std::unique_ptr<GatewayServer>> Start(GatewayOptions options);
  ~GatewayServer();
  GatewayServer(const GatewayServer&) = delete;
  GatewayServer& operator=(const GatewayServer&) = delete;

  // "http://127.0.0.1:8080"
  std::string endpoint() const;
  uint16_t port() const;
  // "http://127.0.0.1:8081", or "" without an admin listener.
  std::string admin_endpoint() const;
  void Shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(10'000));

 private:
  struct Parts;
  explicit GatewayServer(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace slipway::gateway
