#include "gateway/proxy.h"

#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "net/http_wire.h"
#include "gateway/upgrade_tunnel.h"

namespace slipway::gateway {
namespace {

// What the gateway adds to Via (RFC 9110 7.6.3); its count in a request is the hops so far.
constexpr std::string_view kViaToken = "slipway-gateway";
constexpr std::string_view kViaEntry = "1.1 slipway-gateway";

int GatewayHops(const net::Headers& headers) {
  int hops = 0;
  for (const auto& [name, value] : headers) {
    if (!net::EqualsIgnoreCase(name, "Via")) continue;
    for (size_t at = value.find(kViaToken); at != std::string::npos;
         at = value.find(kViaToken, at + kViaToken.size())) {
      ++hops;
    }
  }
  return hops;
}

// "127.0.0.1:53412" -> "127.0.0.1".
std::string_view ClientIp(std::string_view remote_address) {
  size_t colon = remote_address.rfind(':');
  return colon == std::string_view::npos ? remote_address : remote_address.substr(0, colon);
}

// The header lines the instance gets: the request's end-to-end fields, then the forwarding
// fields with the gateway's entries.
std::string UpstreamFields(const net::ProxyRequest& request) {
  std::string out;
  out.reserve(256);
  net::AppendEndToEndFields(request.headers,
                       {"Content-Length", "Expect", "Via", "X-Forwarded-For", "X-Forwarded-Host",
                        "X-Forwarded-Proto"},
                       &out);
  // Proxies before us may have started these lists; our entry goes last.
  auto extend = [&](std::string_view field, std::string_view ours) {
    out += field;
    out += ": ";
    for (const auto& [name, value] : request.headers) {
      if (net::EqualsIgnoreCase(name, field) && !value.empty()) {
        out += value;
        out += ", ";
      }
    }
    out += ours;
    out += "\r\n";
  };
  extend("X-Forwarded-For", ClientIp(request.remote_address));
  extend("Via", kViaEntry);
  out += "X-Forwarded-Host: ";
  out += request.headers.Get("Host").value_or("");
  out += "\r\nX-Forwarded-Proto: http\r\n";
  return out;
}

std::string EscapeHtml(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A page the gateway answers with itself: what happened, and what to do about it.
net::LocalResponse GatewayPage(const net::ProxyRequest& request, int status,
                               std::string_view what, std::string_view advice) {
  bool html = request.headers.GetOr("Accept", "").find("text/html") != std::string::npos;
  net::LocalResponse page;
  page.status = status;
  page.headers = {{"Cache-Control", "no-store"}, {"X-Slipway-Gateway", "1"}};
  if (status == 503) page.headers.Add("Retry-After", "1");
  std::string title = std::to_string(status) + " " + std::string(net::StatusReason(status));
  if (html) {
    page.headers.Add("Content-Type", "text/html; charset=utf-8");
    page.body = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" + title +
                "</title></head>\n<body style=\"font-family: sans-serif; margin: 3em\">\n<h1>" +
                title + "</h1>\n<p>" + EscapeHtml(what) + "</p>\n<p>" + EscapeHtml(advice) +
                "</p>\n<hr><small>slipway gateway</small>\n</body></html>\n";
  } else {
    page.headers.Add("Content-Type", "text/plain; charset=utf-8");
    page.body = title + ": " + std::string(what) + "\n" + std::string(advice) + "\n";
  }
  return page;
}

net::ProxyRoute Answer(net::LocalResponse page) {
  net::ProxyRoute route;
  route.answer = std::move(page);
  return route;
}

// The host for logs: what the request was routed by, or what it sent.
std::string LoggedHost(const net::ProxyRequest& request) {
  auto host = CanonicalHost(request.headers.Get("Host").value_or(""));
  return host ? *host : "-";
}

}  // namespace

Proxy::Proxy(RouteSource routes, ProxyOptions options)
    : routes_(std::move(routes)), options_(options) {}

net::ProxyRoute Proxy::Route(const net::ProxyRequest& request) {
  std::optional<std::string> host = CanonicalHost(request.headers.Get("Host").value_or(""));
  if (!host) {
    return Answer(GatewayPage(request, 400, "the request has no usable Host header.",
                              "The gateway routes by host name: send the deployment's host, e.g. "
                              "curl -H 'Host: myapp-production.localhost' ..."));
  }
  if (!request.target.starts_with('/')) {
    return Answer(GatewayPage(request, 400,
                              "the request target \"" + request.target + "\" is not a path.",
                              "Send the path only (GET /index.html), not a full URL or '*'."));
  }
  if (int hops = GatewayHops(request.headers); hops >= kMaxGatewayHops) {
    return Answer(GatewayPage(
        request, 508,
        "the request for host " + *host + " already went through the gateway " +
            std::to_string(hops) + " times.",
        "An instance address of the deployment routed to this host points back at a gateway; "
        "fix the instance's address."));
  }
  const RoutingTable& table = routes_();
  const Backend* backend = table.Find(*host);
  if (backend == nullptr) {
    return Answer(GatewayPage(request, 404, "no deployment is routed to host " + *host + ".",
                              "Check the host name in the URL; a host is routed once a deployment "
                              "for it is ready (slipway deploy prints its URLs)."));
  }
  std::vector<std::string_view> candidates = Candidates(*backend);
  net::ProxyRoute route;
  if (candidates.empty() && backend->stopped) {
    route = Answer(GatewayPage(
        request, 503,
        "deployment " + backend->deployment_id +
            " is stopped: it was superseded, and the retention policy stopped its instances.",
        "To serve it again, roll back to it: slipway rollback --to " + backend->deployment_id +
            " (its instances start again first)."));
  } else if (candidates.empty()) {
    route = Answer(GatewayPage(request, 503,
                               "deployment " + backend->deployment_id + " has no ready instance.",
                               "Its instances are starting, stopping or failed; retry in a "
                               "moment, or look at the deployment's status and logs."));
  } else {
    // A refused connection is retried once, on the next instance in rotation (the engine tries
    // the upstreams in order).
    route.upstreams.assign(candidates.begin(), candidates.end());
    route.upstream_fields = UpstreamFields(request);
    route.upgrade = IsUpgradeRequest(request);
  }
  route.note = backend->deployment_id;
  route.routed_host = std::move(*host);
  return route;
}

std::vector<std::string_view> Proxy::Candidates(const Backend& backend) {
  if (cooling_count_.load(std::memory_order_relaxed) == 0) return backend.NextInRotation(2);
  std::vector<std::string_view> rotation = backend.NextInRotation(backend.addresses.size());
  std::vector<std::string_view> ready, cooling;
  {
    auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(cooling_mu_);
    // Expired entries go, whichever deployment they were for, so the fast path comes back.
    std::erase_if(cooling_, [&](const auto& entry) { return entry.second <= now; });
    cooling_count_ = cooling_.size();
    for (std::string_view address : rotation) {
      (cooling_.contains(std::string(address)) ? cooling : ready).push_back(address);
    }
  }
  // With every instance cooling, trying one still beats refusing the request.
  for (std::string_view address : cooling) ready.push_back(address);
  if (ready.size() > 2) ready.resize(2);
  return ready;
}

void Proxy::ConnectionFailed(std::string_view address) {
  spdlog::warn("gateway: instance {} refused the connection; passing it over for {} ms", address,
               options_.refused_instance_cooldown.count());
  std::lock_guard lock(cooling_mu_);
  cooling_[std::string(address)] =
      std::chrono::steady_clock::now() + options_.refused_instance_cooldown;
  cooling_count_ = cooling_.size();
}

// The 502 (or 504, when it timed out) page for an instance that failed before its response.
net::LocalResponse Proxy::UpstreamFailed(const net::ProxyRequest& request,
                                         const net::ProxyRoute& route, std::string_view address,
                                         const Status& why, bool timed_out) {
  spdlog::warn("gateway: {} {} for {}: instance {} of deployment {} failed: {}", request.method,
               request.target, LoggedHost(request), address, route.note, why.message());
  return GatewayPage(request, timed_out ? 504 : 502,
                     "deployment " + route.note + "'s instance at " + std::string(address) +
                         (timed_out ? " did not answer in time." : " could not be reached or failed."),
                     "The app may have crashed or be overloaded: look at the deployment's logs; "
                     "retrying may reach another instance.");
}

void Proxy::Completed(const net::ProxyRequest& request, const net::ProxyRoute& route,
                      const net::ProxyOutcome& outcome) {
  if (options_.metrics != nullptr) {
    using Failure = net::ProxyOutcome::UpstreamFailure;
    std::string_view upstream_error = outcome.upstream_failure == Failure::kUnreachable ? "unreachable"
                                      : outcome.upstream_failure == Failure::kTimeout   ? "timeout"
                                      : outcome.upstream_failure == Failure::kBroken    ? "broken"
                                                                                        : "";
    // route.note is the deployment, set only when the request's host is routed: other hosts
    // count under "", so what a client writes in Host cannot grow the label set.
    options_.metrics->RequestServed(
        {.routed_host = route.routed_host,
         .status = outcome.status,
         .seconds = std::chrono::duration<double>(outcome.elapsed).count(),
         .retries = outcome.retries,
         .upstream_error = upstream_error});
  }
  if (!options_.access_log) return;
  double ms = std::chrono::duration<double, std::milli>(outcome.elapsed).count();
  spdlog::info(
      "access: {} \"{} {}\" host={} deployment={} instance={} status={} bytes={} ms={:.1f}{}",
      request.remote_address, request.method, request.target,
      route.routed_host.empty() ? LoggedHost(request) : route.routed_host,
      route.note.empty() ? "-" : route.note, outcome.upstream.empty() ? "-" : outcome.upstream,
      outcome.status, outcome.body_bytes, ms, outcome.aborted ? " aborted" : "");
}

}  // namespace slipway::gateway
