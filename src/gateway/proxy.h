// The gateway's request path: Host -> route -> a RUNNING instance (round robin) -> the request
// proxied to it, bodies streamed both ways (never held in memory whatever their size).
//
// What the upstream receives: the client's method, target and header fields, minus hop-by-hop
// fields (Connection and the fields it names, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade, Proxy-Authorization), plus X-Forwarded-For (the client's address
// appended), X-Forwarded-Host (the Host the client sent) and X-Forwarded-Proto ("http").
// The client gets the upstream's status and fields, minus hop-by-hop ones.
//
// When the gateway answers itself, with a short page (HTML for browsers, text otherwise):
//  400 no usable Host header;
//  404 no deployment is routed to the host;
//  503 the host's deployment has no RUNNING instance;
//  502 the instance could not be reached or broke before its response began
//      (a refused connection is first retried once on another instance: the upstream never saw
//      the request, so this is safe for any method; the refusing instance is then passed over
//      for refused_instance_cooldown while the deployment has others);
//  504 the instance accepted the request but sent nothing for upstream_idle_timeout;
//  508 the request already went through a slipway gateway kMaxGatewayHops times (an instance
//      address that points back at a gateway), instead of looping until threads run out.
// Every proxied request carries "Via: 1.1 slipway-gateway", which is how loops are seen.
// An upstream that breaks in the middle of its response body makes the gateway close the
// client's connection without ending the body, so the client sees a truncated response.
// A GET that asks to switch protocols (WebSocket) is relayed over a TCP connection of its own;
// after the instance's 101 the bytes are copied both ways until either side closes.
//
// Thread-safety: Serve is called concurrently by the HTTP server's connection threads.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "gateway/routing_table.h"
#include "net/http_client.h"
#include "net/http_server.h"

namespace slipway::gateway {

inline constexpr int kMaxGatewayHops = 5;

struct ProxyOptions {
  std::chrono::milliseconds upstream_connect_timeout{5'000};
  // An upstream silent (no byte either way) for this long fails the request (504 or abort).
  std::chrono::milliseconds upstream_idle_timeout{60'000};
  // How long an instance that refused a connection is passed over (until the database says it
  // is gone, or this runs out): a dead instance costs one failed connect, not one per request.
  std::chrono::milliseconds refused_instance_cooldown{2'000};
  // One info line per request: client, request line, host, deployment, instance, status, body
  // bytes sent, duration.
  bool access_log = false;
};

class Proxy {
 public:
  // routes returns the table to use for one request; it is called once per request.
  using RouteSource = std::function<std::shared_ptr<const RoutingTable>()>;

  Proxy(RouteSource routes, ProxyOptions options);

  void Serve(const net::HttpRequest& request, net::BodyReader& body, net::ResponseWriter& writer);

 private:
  enum class Outcome { kDone, kNotConnected, kFailed };
  // What the access log says about a request beyond its response.
  struct AccessNote {
    std::string host;
    std::string deployment;
    std::string instance;
  };
  void Route(const net::HttpRequest& request, net::BodyReader& body, net::ResponseWriter& writer,
             AccessNote& note);
  Outcome Forward(std::string_view address, const Backend& backend, const std::string& host,
                  const net::HttpRequest& request, net::BodyReader& body,
                  net::ResponseWriter& writer, bool last_try);
  // A request that switches protocols (WebSocket), over a TCP connection of its own.
  Outcome ForwardUpgrade(std::string_view address, const Backend& backend, const std::string& host,
                         const net::HttpRequest& request, net::ResponseWriter& writer,
                         bool last_try);

  // Up to two instances to try, in rotation order, passing over the cooling ones while others
  // are available.
  std::vector<std::string_view> Candidates(const Backend& backend);
  void CoolDown(std::string_view address);

  RouteSource routes_;
  ProxyOptions options_;
  net::HttpClient client_;

  std::mutex cooling_mu_;
  // Instances that refused a connection -> until when they are passed over.
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> cooling_;
  std::atomic<size_t> cooling_count_{0};  // cooling_.size(), read without the lock
};

}  // namespace slipway::gateway
