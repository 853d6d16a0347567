#include "gateway/gateway_server.h"

#include <spdlog/spdlog.h>

#include <mutex>

#include "base/metrics.h"
#include "base/ops_endpoints.h"
#include "db/migrations.h"
#include "gateway/gateway_metrics.h"
#include "gateway/proxy.h"
#include "gateway/route_refresher.h"
#include "net/proxy_server.h"
#include "net/http_server.h"
#include "net/ops_http.h"

namespace slipway::gateway {

// Declared in the order they start; destroyed in reverse (server before proxy before routes).
struct GatewayServer::Parts {
  metrics::Registry registry;
  GatewayMetrics metrics{registry};
  OpsEndpoints ops;
  std::unique_ptr<db::Database> owned_partition;
  std::unique_ptr<RouteRefresher> routes;
  std::unique_ptr<Proxy> proxy;
  std::unique_ptr<net::ProxyServer> server;
  std::unique_ptr<net::HttpServer> admin;  // the operational endpoints, when admin_listen is set
  std::mutex shutdown_mu;
  bool shut_down = false;
};

GatewayServer::GatewayServer(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

GatewayServer::~GatewayServer() { Shutdown(); }

Result<std::unique_ptr<GatewayServer>> GatewayServer::Start(GatewayOptions options) {
  auto parts = std::make_unique<Parts>();
  db::Database* partition = options.partition;
  if (partition == nullptr) {
    if (options.partition_database.empty()) {
      return Status::InvalidArgument(
          "the gateway needs the partition database: pass --partition-database (or set "
          "PARTITION_DATABASE_URL) to the SQLite path or postgresql:// URL ctrl writes routes to");
    }
    auto opened = db::OpenPartition(options.partition_database);
    if (!opened.ok()) {
      return opened.status().WithContext("opening the partition database \"" +
                                         options.partition_database + "\"");
    }
    parts->owned_partition = std::move(opened).value();
    partition = parts->owned_partition.get();
  }

  SLIPWAY_ASSIGN_OR_RETURN(parts->routes,
                           RouteRefresher::Start(*partition, options.refresh_interval));
  RouteRefresher* routes = parts->routes.get();
  parts->proxy = std::make_unique<Proxy>(
      [routes]() -> const RoutingTable& { return routes->ForThisThread(); },
      ProxyOptions{.refused_instance_cooldown = options.refused_instance_cooldown,
                   .access_log = options.access_log,
                   .metrics = &parts->metrics});

  net::ProxyServerOptions server_options;
  server_options.listen = options.listen;
  server_options.threads = options.threads;
  server_options.max_connections = options.max_connections;
  server_options.max_header_bytes = options.max_header_bytes;
  server_options.max_body_bytes = options.max_body_bytes;
  server_options.header_timeout = options.header_timeout;
  server_options.client_read_timeout = options.client_timeout;
  server_options.client_write_timeout = options.client_timeout;
  server_options.client_idle_timeout = options.client_idle_timeout;
  server_options.upstream_connect_timeout = options.upstream_connect_timeout;
  server_options.upstream_idle_timeout = options.upstream_idle_timeout;
  server_options.upstream_keepalive = options.upstream_keepalive;
  auto server = net::ProxyServer::Start(server_options, *parts->proxy);
  if (!server.ok()) return server.status().WithContext("starting the gateway");
  parts->server = std::move(server).value();
  metrics::AddProcessMetrics(parts->registry, "gateway");
  if (!options.admin_listen.empty()) {
    parts->ops.registry = &parts->registry;
    parts->ops.ready = [partition]() -> Status {
      auto answered = partition->Query("SELECT 1");
      if (!answered.ok()) {
        return answered.status().WithContext("the partition database (" + partition->Describe() +
                                             ") does not answer");
      }
      return Status::Ok();
    };
    net::HttpServer::Options admin_options;
    admin_options.listen = options.admin_listen;
    admin_options.max_connections = 64;
    const OpsEndpoints* ops = &parts->ops;
    auto admin = net::HttpServer::Start(
        admin_options, [ops](const net::HttpRequest& request, net::BodyReader&,
                             net::ResponseWriter& writer) {
          if (net::ServeOpsEndpoint(request, writer, *ops)) return;
          (void)writer.Send(404, {{"Content-Type", "text/plain; charset=utf-8"}},
                            "the gateway's admin listener serves /healthz, /readyz and /metrics; "
                            "apps are on the routed port.\n");
        });
    if (!admin.ok()) {
      parts->server->Shutdown();
      return admin.status().WithContext("starting the gateway's admin listener on " +
                                        options.admin_listen + " (--admin-listen)");
    }
    parts->admin = std::move(admin).value();
  }
  spdlog::info("gateway listening on {} ({} event-loop threads), routes from {} (refreshed every {} ms)",
               parts->server->address(), parts->server->threads(), partition->Describe(),
               options.refresh_interval.count());
  if (parts->admin) {
    spdlog::info("gateway admin endpoints (/healthz, /readyz, /metrics) on {}",
                 parts->admin->address());
  }
  return std::unique_ptr<GatewayServer>(new GatewayServer(std::move(parts)));
}

std::string GatewayServer::endpoint() const { return "http://" + parts_->server->address(); }

uint16_t GatewayServer::port() const { return parts_->server->port(); }

std::string GatewayServer::admin_endpoint() const {
  return parts_->admin ? "http://" + parts_->admin->address() : "";
}

void GatewayServer::Shutdown(std::chrono::milliseconds grace) {
  std::lock_guard lock(parts_->shutdown_mu);
  if (parts_->shut_down) return;
  parts_->shut_down = true;
  parts_->server->Shutdown(grace);
  if (parts_->admin) parts_->admin->Shutdown(grace);
  parts_->routes->Stop();
  spdlog::info("gateway stopped");
}

}  // namespace slipway::gateway
