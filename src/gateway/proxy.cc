#include "gateway/proxy.h"

#include <spdlog/spdlog.h>

#include <array>
#include <charconv>
#include <string>
#include <vector>

namespace slipway::gateway {
namespace {

// Fields that describe one connection, not the message (RFC 9110 7.6.1), and so never cross
// the gateway. Content-Length and Expect are also the transport's: the gateway's HTTP client
// frames the upstream request itself, and the gateway's server answers the client's Expect.
constexpr std::array<std::string_view, 8> kHopByHop = {
    "Connection", "Keep-Alive", "Proxy-Connection",    "TE",
    "Trailer",    "Upgrade",    "Proxy-Authorization", "Transfer-Encoding"};

// What the gateway adds to Via (RFC 9110 7.6.3); its count in a request is the hops so far.
constexpr std::string_view kViaToken = "slipway-gateway";

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

// The field names a Connection header lists ("close, X-Secret" -> {"close", "X-Secret"}).
std::vector<std::string> ConnectionTokens(const net::Headers& headers) {
  std::vector<std::string> tokens;
  for (const auto& [name, value] : headers) {
    if (!net::EqualsIgnoreCase(name, "Connection")) continue;
    size_t pos = 0;
    while (pos <= value.size()) {
      size_t comma = value.find(',', pos);
      std::string_view token(value);
      token = token.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
        token.remove_prefix(1);
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
        token.remove_suffix(1);
      if (!token.empty()) tokens.emplace_back(token);
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  return tokens;
}

// The end-to-end fields of a message: everything but hop-by-hop fields and the extra names.
net::Headers EndToEndFields(const net::Headers& headers,
                            std::initializer_list<std::string_view> also_drop) {
  std::vector<std::string> listed = ConnectionTokens(headers);
  auto dropped = [&](std::string_view name) {
    for (std::string_view h : kHopByHop) {
      if (net::EqualsIgnoreCase(name, h)) return true;
    }
    for (std::string_view h : also_drop) {
      if (net::EqualsIgnoreCase(name, h)) return true;
    }
    for (const std::string& h : listed) {
      if (net::EqualsIgnoreCase(name, h)) return true;
    }
    return false;
  };
  net::Headers out;
  for (const auto& [name, value] : headers) {
    if (!dropped(name)) out.Add(name, value);
  }
  return out;
}

// "127.0.0.1:53412" -> "127.0.0.1".
std::string_view ClientIp(std::string_view remote_address) {
  size_t colon = remote_address.rfind(':');
  return colon == std::string_view::npos ? remote_address : remote_address.substr(0, colon);
}

net::Headers UpstreamFields(const net::HttpRequest& request) {
  net::Headers out =
      EndToEndFields(request.headers, {"Content-Length", "Expect", "Via", "X-Forwarded-For",
                                       "X-Forwarded-Host", "X-Forwarded-Proto"});
  // Proxies before us may have started these lists; our entry goes last.
  auto extend = [&](std::string_view field, std::string_view ours) {
    std::string list;
    for (const auto& [name, value] : request.headers) {
      if (net::EqualsIgnoreCase(name, field) && !value.empty()) {
        list += (list.empty() ? "" : ", ") + value;
      }
    }
    list += (list.empty() ? "" : ", ") + std::string(ours);
    out.Add(std::string(field), std::move(list));
  };
  extend("X-Forwarded-For", ClientIp(request.remote_address));
  extend("Via", "1.1 " + std::string(kViaToken));
  out.Add("X-Forwarded-Host", request.headers.GetOr("Host", ""));
  out.Add("X-Forwarded-Proto", "http");
  return out;
}

std::optional<uint64_t> ContentLength(const net::Headers& headers) {
  if (auto te = headers.Get("Transfer-Encoding"); te && !te->empty()) return std::nullopt;
  auto value = headers.Get("Content-Length");
  if (!value) return std::nullopt;
  uint64_t n = 0;
  auto [end, err] = std::from_chars(value->data(), value->data() + value->size(), n);
  if (err != std::errc() || end != value->data() + value->size()) return std::nullopt;
  return n;
}

bool HasRequestBody(const net::HttpRequest& request) {
  return request.chunked || (request.content_length && *request.content_length > 0);
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
void SendGatewayPage(const net::HttpRequest& request, net::ResponseWriter& writer, int status,
                     std::string_view what, std::string_view advice) {
  if (writer.head_written()) return;
  bool html = request.headers.GetOr("Accept", "").find("text/html") != std::string::npos;
  std::string body;
  net::Headers fields = {{"Cache-Control", "no-store"}, {"X-Slipway-Gateway", "1"}};
  if (status == 503) fields.Add("Retry-After", "1");
  std::string title = std::to_string(status) + " " + std::string(net::StatusReason(status));
  if (html) {
    fields.Add("Content-Type", "text/html; charset=utf-8");
    body = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" + title +
           "</title></head>\n<body style=\"font-family: sans-serif; margin: 3em\">\n<h1>" + title +
           "</h1>\n<p>" + EscapeHtml(what) + "</p>\n<p>" + EscapeHtml(advice) +
           "</p>\n<hr><small>slipway gateway</small>\n</body></html>\n";
  } else {
    fields.Add("Content-Type", "text/plain; charset=utf-8");
    body = title + ": " + std::string(what) + "\n" + std::string(advice) + "\n";
  }
  Status sent = writer.Send(status, fields, body);
  if (!sent.ok()) spdlog::debug("gateway: sending the {} page failed: {}", status, sent.message());
}

}  // namespace

Proxy::Proxy(RouteSource routes, ProxyOptions options)
    : routes_(std::move(routes)), options_(options) {}

void Proxy::Serve(const net::HttpRequest& request, net::BodyReader& body,
                  net::ResponseWriter& writer) {
  std::optional<std::string> host = CanonicalHost(request.headers.GetOr("Host", ""));
  if (!host) {
    SendGatewayPage(request, writer, 400, "the request has no usable Host header.",
                    "The gateway routes by host name: send the deployment's host, e.g. "
                    "curl -H 'Host: myapp-production.localhost' ...");
    return;
  }
  if (!request.target.starts_with('/')) {
    SendGatewayPage(request, writer, 400,
                    "the request target \"" + request.target + "\" is not a path.",
                    "Send the path only (GET /index.html), not a full URL or '*'.");
    return;
  }
  if (int hops = GatewayHops(request.headers); hops >= kMaxGatewayHops) {
    SendGatewayPage(request, writer, 508,
                    "the request for host " + *host + " already went through the gateway " +
                        std::to_string(hops) + " times.",
                    "An instance address of the deployment routed to this host points back at a "
                    "gateway; fix the instance's address.");
    return;
  }
  std::shared_ptr<const RoutingTable> table = routes_();
  const Backend* backend = table->Find(*host);
  if (backend == nullptr) {
    SendGatewayPage(request, writer, 404, "no deployment is routed to host " + *host + ".",
                    "Check the host name in the URL; a host is routed once a deployment for it "
                    "is ready (slipway deploy prints its URLs).");
    return;
  }
  // A refused connection is retried once, on the next instance in rotation.
  std::vector<std::string_view> candidates = Candidates(*backend);
  if (candidates.empty()) {
    SendGatewayPage(request, writer, 503,
                    "deployment " + backend->deployment_id + " has no ready instance.",
                    "Its instances are starting, stopping or failed; retry in a moment, or look "
                    "at the deployment's status and logs.");
    return;
  }
  for (size_t i = 0; i < candidates.size(); ++i) {
    bool last_try = i + 1 == candidates.size();
    if (Forward(candidates[i], *backend, *host, request, body, writer, last_try) !=
        Outcome::kNotConnected) {
      return;
    }
  }
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

void Proxy::CoolDown(std::string_view address) {
  std::lock_guard lock(cooling_mu_);
  cooling_[std::string(address)] =
      std::chrono::steady_clock::now() + options_.refused_instance_cooldown;
  cooling_count_ = cooling_.size();
}

Proxy::Outcome Proxy::Forward(std::string_view address, const Backend& backend,
                              const std::string& host, const net::HttpRequest& request,
                              net::BodyReader& body, net::ResponseWriter& writer, bool last_try) {
  net::ClientRequest upstream;
  upstream.method = request.method;
  upstream.url = "http://" + std::string(address) + request.target;
  upstream.headers = UpstreamFields(request);
  upstream.connect_timeout = options_.upstream_connect_timeout;
  upstream.low_speed_timeout = options_.upstream_idle_timeout;
  // The gateway decides about retries itself: only a connection never made is safe to repeat.
  upstream.idempotent = false;
  upstream.max_attempts = 1;

  bool connected = false;
  Status client_failure;  // the client side broke (went away, bad body): nobody to answer
  upstream.on_connected = [&] { connected = true; };
  if (HasRequestBody(request)) {
    upstream.body_source = [&](char* buf, size_t n) -> Result<size_t> {
      Result<size_t> got = body.Read(buf, n);
      if (!got.ok()) client_failure = got.status();
      return got;
    };
    upstream.body_size = request.content_length;  // unset for chunked: sent chunked
  }
  upstream.on_headers = [&](int status, const net::Headers& fields) {
    Status sent =
        writer.WriteHead(status, EndToEndFields(fields, {"Content-Length"}), ContentLength(fields));
    if (!sent.ok()) client_failure = sent;
    return sent.ok();
  };
  upstream.on_body = [&](std::string_view chunk) {
    Status sent = writer.Write(chunk);
    if (!sent.ok()) client_failure = sent;
    return sent.ok();
  };

  Result<net::ClientResponse> response = client_.Do(upstream);
  if (response.ok() && writer.head_written()) {
    Status finished = writer.Finish();
    if (!finished.ok()) {
      spdlog::debug("gateway: {} {} for {}: {}", request.method, request.target, host,
                    finished.message());
    }
    return Outcome::kDone;
  }
  if (!client_failure.ok()) {
    spdlog::debug("gateway: {} {} for {} stopped on the client side: {}", request.method,
                  request.target, host, client_failure.message());
    writer.Abort();
    return Outcome::kDone;
  }
  std::string why = response.ok() ? "it sent no response" : response.status().message();
  if (writer.head_written()) {
    spdlog::warn(
        "gateway: instance {} of deployment {} broke in the middle of the response to "
        "{} {} for {}: {}",
        address, backend.deployment_id, request.method, request.target, host, why);
    writer.Abort();
    return Outcome::kDone;
  }
  if (!connected) CoolDown(address);
  if (!connected && !last_try) {
    spdlog::warn(
        "gateway: instance {} of deployment {} refused the connection; retrying on "
        "another instance ({})",
        address, backend.deployment_id, why);
    return Outcome::kNotConnected;
  }
  spdlog::warn("gateway: {} {} for {}: instance {} of deployment {} failed: {}", request.method,
               request.target, host, address, backend.deployment_id, why);
  bool timed_out = !response.ok() && response.status().code() == Code::kDeadlineExceeded;
  SendGatewayPage(request, writer, timed_out ? 504 : 502,
                  "deployment " + backend.deployment_id + "'s instance at " + std::string(address) +
                      (timed_out ? " did not answer in time." : " could not be reached or failed."),
                  "The app may have crashed or be overloaded: look at the deployment's logs; "
                  "retrying may reach another instance.");
  return Outcome::kFailed;
}

}  // namespace slipway::gateway
