// The gateway's request path, as the policy of the event-driven proxy engine
// (net/proxy_server.h): Host -> route -> a RUNNING instance (round robin), decided from the
// request head on the engine's loop thread without blocking; the engine streams the bodies.
//
// What the upstream receives: the client's method, target and header fields, minus hop-by-hop
// fields (Connection and the fields it names, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade, Proxy-Authorization), plus X-Forwarded-For (the client's address
// appended), X-Forwarded-Host (the Host the client sent) and X-Forwarded-Proto ("http").
// The client gets the upstream's status and fields, minus hop-by-hop ones.
//
// When the gateway answers itself, with a short page (HTML for browsers, text otherwise):
//  400 no usable Host header, or a target that is not a path (absolute-form, '*');
//  404 no deployment is routed to the host;
//  503 the host's deployment has no RUNNING instance (or was stopped by the retention policy:
//      the page says how to roll back to it);
//  502 the instance could not be reached or broke before its response began
//      (a refused connection is first retried once on another instance: the upstream never saw
//      the request, so this is safe for any method; the refusing instance is then passed over
//      for refused_instance_cooldown while the deployment has others);
//  504 the instance accepted the request but sent nothing for the upstream idle timeout;
//  508 the request already went through a slipway gateway kMaxGatewayHops times (an instance
//      address that points back at a gateway), instead of looping.
// Every proxied request carries "Via: 1.1 slipway-gateway", which is how loops are seen.
// A GET that asks to switch protocols (WebSocket) is relayed as a tunnel after the 101.
//
// Thread-safety: every method may be called concurrently from the engine's loop threads.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "gateway/gateway_metrics.h"
#include "gateway/routing_table.h"
#include "net/proxy_server.h"

namespace slipway::gateway {

inline constexpr int kMaxGatewayHops = 5;

struct ProxyOptions {
  // How long an instance that refused a connection is passed over (until the database says it
  // is gone, or this runs out): a dead instance costs one failed connect, not one per request.
  std::chrono::milliseconds refused_instance_cooldown{2'000};
  // One info line per request: client, request line, host, deployment, instance, status, body
  // bytes sent, duration.
  bool access_log = false;
  // Counts every request (gateway_metrics.h); null: not counted. Must outlive the proxy.
  GatewayMetrics* metrics = nullptr;
};

class Proxy final : public net::ProxyPolicy {
 public:
  // routes returns the table to use for one request; it is called once per request, and what
  // it returns need only stay valid until the same thread calls it again.
  using RouteSource = std::function<const RoutingTable&()>;

  Proxy(RouteSource routes, ProxyOptions options);

  net::ProxyRoute Route(const net::ProxyRequest& request) override;
  void ConnectionFailed(std::string_view upstream) override;
  net::LocalResponse UpstreamFailed(const net::ProxyRequest& request,
                                    const net::ProxyRoute& route, std::string_view upstream,
                                    const Status& why, bool timed_out) override;
  void Completed(const net::ProxyRequest& request, const net::ProxyRoute& route,
                 const net::ProxyOutcome& outcome) override;

 private:
  // Up to two instances to try, in rotation order, passing over the cooling ones while others
  // are available.
  std::vector<std::string_view> Candidates(const Backend& backend);

  RouteSource routes_;
  ProxyOptions options_;

  std::mutex cooling_mu_;
  // Instances that refused a connection -> until when they are passed over.
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> cooling_;
  std::atomic<size_t> cooling_count_{0};  // cooling_.size(), read without the lock
};

}  // namespace slipway::gateway
