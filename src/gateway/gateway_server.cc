#include "gateway/gateway_server.h"

#include <spdlog/spdlog.h>

#include <mutex>

#include "db/migrations.h"
#include "gateway/proxy.h"
#include "gateway/route_refresher.h"
#include "net/http_server.h"

namespace slipway::gateway {

// Declared in the order they start; destroyed in reverse (server before proxy before routes).
struct GatewayServer::Parts {
  std::unique_ptr<db::Database> owned_partition;
  std::unique_ptr<RouteRefresher> routes;
  std::unique_ptr<Proxy> proxy;
  std::unique_ptr<net::HttpServer> server;
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
      [routes] { return routes->current(); },
      ProxyOptions{.upstream_connect_timeout = options.upstream_connect_timeout,
                   .upstream_idle_timeout = options.upstream_idle_timeout,
                   .refused_instance_cooldown = options.refused_instance_cooldown,
                   .access_log = options.access_log});

  net::HttpServer::Options server_options;
  server_options.listen = options.listen;
  server_options.max_connections = options.max_connections;
  // A client streaming a large body may be slower than an API client; the upstream's own
  // silence is bounded by upstream_idle_timeout.
  server_options.read_timeout = std::chrono::seconds(60);
  server_options.write_timeout = std::chrono::seconds(60);
  Proxy* proxy = parts->proxy.get();
  auto server = net::HttpServer::Start(
      server_options,
      [proxy](const net::HttpRequest& request, net::BodyReader& body, net::ResponseWriter& writer) {
        proxy->Serve(request, body, writer);
      });
  if (!server.ok()) return server.status().WithContext("starting the gateway");
  parts->server = std::move(server).value();
  spdlog::info("gateway listening on {}, routes from {} (refreshed every {} ms)",
               parts->server->address(), partition->Describe(), options.refresh_interval.count());
  return std::unique_ptr<GatewayServer>(new GatewayServer(std::move(parts)));
}

std::string GatewayServer::endpoint() const { return "http://" + parts_->server->address(); }

uint16_t GatewayServer::port() const { return parts_->server->port(); }

void GatewayServer::Shutdown(std::chrono::milliseconds grace) {
  std::lock_guard lock(parts_->shutdown_mu);
  if (parts_->shut_down) return;
  parts_->shut_down = true;
  parts_->server->Shutdown(grace);
  parts_->routes->Stop();
  spdlog::info("gateway stopped");
}

}  // namespace slipway::gateway
