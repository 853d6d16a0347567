#include "gateway/proxy.h"

#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "gateway/header_fields.h"
#include "gateway/upgrade_tunnel.h"

namespace slipway::gateway {
namespace {

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

// The 502 (or 504, when it timed out) page for an instance that failed before its response.
void SendUpstreamFailure(const net::HttpRequest& request, net::ResponseWriter& writer,
                         const Backend& backend, std::string_view address, const std::string& host,
                         const Status& why) {
  spdlog::warn("gateway: {} {} for {}: instance {} of deployment {} failed: {}", request.method,
               request.target, host, address, backend.deployment_id, why.message());
  bool timed_out = why.code() == Code::kDeadlineExceeded;
  SendGatewayPage(request, writer, timed_out ? 504 : 502,
                  "deployment " + backend.deployment_id + "'s instance at " + std::string(address) +
                      (timed_out ? " did not answer in time." : " could not be reached or failed."),
                  "The app may have crashed or be overloaded: look at the deployment's logs; "
                  "retrying may reach another instance.");
}

// Passes every call on to the server's writer and remembers what went out, for the access log.
class RecordingWriter final : public net::ResponseWriter {
 public:
  explicit RecordingWriter(net::ResponseWriter& inner) : inner_(inner) {}

  Status WriteHead(int status, const net::Headers& headers,
                   std::optional<uint64_t> content_length) override {
    status_ = status;
    return inner_.WriteHead(status, headers, content_length);
  }
  Status Write(std::string_view data) override {
    bytes_ += data.size();
    return inner_.Write(data);
  }
  Status Finish() override { return inner_.Finish(); }
  bool head_written() const override { return inner_.head_written(); }
  void Abort() override {
    aborted_ = true;
    inner_.Abort();
  }
  Result<net::UpgradedConnection*> Upgrade(const net::Headers& headers) override {
    status_ = 101;
    return inner_.Upgrade(headers);
  }

  int status() const { return status_; }
  uint64_t body_bytes() const { return bytes_; }
  bool aborted() const { return aborted_; }

 private:
  net::ResponseWriter& inner_;
  int status_ = 0;
  uint64_t bytes_ = 0;
  bool aborted_ = false;
};

}  // namespace

// The server runs one thread per client connection: a shared pool lets a connection to an
// instance outlive the client connection that opened it.
Proxy::Proxy(RouteSource routes, ProxyOptions options)
    : routes_(std::move(routes)),
      options_(options),
      client_(net::HttpClient::ConnectionReuse::kShared) {}

void Proxy::Serve(const net::HttpRequest& request, net::BodyReader& body,
                  net::ResponseWriter& writer) {
  if (!options_.access_log) {
    AccessNote note;
    Route(request, body, writer, note);
    return;
  }
  auto started = std::chrono::steady_clock::now();
  RecordingWriter recorded(writer);
  AccessNote note;
  Route(request, body, recorded, note);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  spdlog::info(
      "access: {} \"{} {}\" host={} deployment={} instance={} status={} bytes={} ms={:.1f}{}",
      request.remote_address, request.method, request.target, note.host.empty() ? "-" : note.host,
      note.deployment.empty() ? "-" : note.deployment, note.instance.empty() ? "-" : note.instance,
      recorded.status(), recorded.body_bytes(), ms, recorded.aborted() ? " aborted" : "");
}

void Proxy::Route(const net::HttpRequest& request, net::BodyReader& body,
                  net::ResponseWriter& writer, AccessNote& note) {
  std::optional<std::string> host = CanonicalHost(request.headers.GetOr("Host", ""));
  if (host) note.host = *host;
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
  note.deployment = backend->deployment_id;
  // A refused connection is retried once, on the next instance in rotation.
  std::vector<std::string_view> candidates = Candidates(*backend);
  if (candidates.empty()) {
    SendGatewayPage(request, writer, 503,
                    "deployment " + backend->deployment_id + " has no ready instance.",
                    "Its instances are starting, stopping or failed; retry in a moment, or look "
                    "at the deployment's status and logs.");
    return;
  }
  bool upgrade = IsUpgradeRequest(request);
  for (size_t i = 0; i < candidates.size(); ++i) {
    bool last_try = i + 1 == candidates.size();
    note.instance = candidates[i];
    Outcome outcome =
        upgrade ? ForwardUpgrade(candidates[i], *backend, *host, request, writer, last_try)
                : Forward(candidates[i], *backend, *host, request, body, writer, last_try);
    if (outcome != Outcome::kNotConnected) return;
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
  SendUpstreamFailure(request, writer, backend, address, host,
                      response.ok() ? Status::Unavailable(why) : response.status());
  return Outcome::kFailed;
}

Proxy::Outcome Proxy::ForwardUpgrade(std::string_view address, const Backend& backend,
                                     const std::string& host, const net::HttpRequest& request,
                                     net::ResponseWriter& writer, bool last_try) {
  auto socket = UpstreamSocket::Connect(address, options_.upstream_connect_timeout);
  if (!socket.ok()) {
    CoolDown(address);
    if (!last_try) {
      spdlog::warn(
          "gateway: instance {} of deployment {} refused the connection; retrying on "
          "another instance ({})",
          address, backend.deployment_id, socket.status().message());
      return Outcome::kNotConnected;
    }
    SendUpstreamFailure(request, writer, backend, address, host, socket.status());
    return Outcome::kFailed;
  }
  std::string upgrade = request.headers.GetOr("Upgrade", "");
  std::string head = "GET " + request.target + " HTTP/1.1\r\n";
  for (const auto& [name, value] : UpstreamFields(request)) head += name + ": " + value + "\r\n";
  head += "Connection: Upgrade\r\nUpgrade: " + upgrade + "\r\n\r\n";
  Status sent = socket->WriteAll(head, options_.upstream_idle_timeout);
  Result<UpstreamHead> response = sent.ok()
                                      ? ReadResponseHead(*socket, options_.upstream_idle_timeout)
                                      : Result<UpstreamHead>(sent);
  if (!response.ok()) {
    SendUpstreamFailure(request, writer, backend, address, host, response.status());
    return Outcome::kFailed;
  }
  if (response->status == 101) {
    net::Headers fields = EndToEndFields(response->headers, {"Content-Length"});
    fields.Add("Connection", "Upgrade");
    fields.Add("Upgrade", response->headers.GetOr("Upgrade", upgrade));
    auto client = writer.Upgrade(fields);
    if (!client.ok()) {
      spdlog::debug("gateway: upgrading the connection for {} failed: {}", host,
                    client.status().message());
      return Outcome::kDone;
    }
    Pump(*socket, response->after_head, **client);
    return Outcome::kDone;
  }
  // The instance declined to switch: its answer is an ordinary response.
  Status copied =
      writer.WriteHead(response->status, EndToEndFields(response->headers, {"Content-Length"}),
                       ContentLength(response->headers));
  if (copied.ok()) {
    copied = CopyResponseBody(*socket, *response, writer, options_.upstream_idle_timeout);
  }
  if (!copied.ok()) {
    spdlog::debug("gateway: relaying the response to an upgrade request for {} failed: {}", host,
                  copied.message());
    writer.Abort();
  }
  return Outcome::kDone;
}

}  // namespace slipway::gateway
