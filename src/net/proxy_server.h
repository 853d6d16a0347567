// An event-driven HTTP/1.1 reverse-proxy engine (Boost.Asio underneath, hidden in
// proxy_server.cc): a fixed set of event-loop threads serves every client connection and every
// connection to an upstream, with no thread per connection. What to do with each request is a
// ProxyPolicy's decision, taken on the loop thread from the request head alone; the engine does
// the I/O.
//
// Promises:
//  - request heads are parsed strictly (http_wire.h): an ambiguous or malformed one is answered
//    400 and never forwarded; a head over max_header_bytes is 431; a Content-Length over
//    max_body_bytes is 413 (a chunked body over it is cut off); each closes the connection;
//  - a client must send a whole request head within header_timeout of its first byte (slowloris),
//    may stay silent mid-body for client_read_timeout, must take response bytes within
//    client_write_timeout, and an idle keep-alive connection is closed after client_idle_timeout;
//  - bodies stream both ways at once through one buffer per direction, each relayed only as
//    fast as the other side takes it: a slow reader slows the writer (back-pressure), and
//    memory does not grow with body size; an idle connection holds no buffer;
//  - upstream connections are kept alive in a pool per upstream address and loop thread (at
//    most upstream_keepalive idle ones each, closed after upstream_keepalive_timeout idle),
//    shared by every client connection of that loop; a pooled connection the upstream closed is
//    replaced transparently when the request had not yet been sent;
//  - the upstreams of a route are tried in order, the next only when the connection could not
//    be made (nothing was sent, so it is safe for any method); failures before the response
//    began are answered with the policy's page, a failure mid-response closes the client's
//    connection without ending the body;
//  - a response goes to the client with the upstream's status and end-to-end fields, copied from
//    the bytes it arrived in (no field is allocated); its hop-by-hop fields (RFC 9110 7.6.1) and
//    those its Connection field names are dropped, and the engine frames it itself;
//  - a route with upgrade=true is relayed as a tunnel after the upstream's 101 (WebSocket)
//    over a connection of its own, until either side closes;
//  - Shutdown stops accepting, closes idle connections at once, lets in-flight requests finish
//    within the grace period (their responses say "Connection: close"), then closes the rest.
//
// Thread-safety: the policy is called concurrently from every loop thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "net/http.h"

namespace slipway::net {

// A client's request head, as the policy sees it.
struct ProxyRequest {
  std::string method;
  std::string target;
  Headers headers;
  std::optional<uint64_t> content_length;  // absent for chunked or no body
  bool chunked = false;
  std::string remote_address;  // "127.0.0.1:53412"
  bool has_body() const { return chunked || (content_length && *content_length > 0); }
};

// A response the engine sends itself.
struct LocalResponse {
  int status = 200;
  Headers headers;  // Content-Length is added
  std::string body;
};

// The policy's decision for one request.
struct ProxyRoute {
  std::optional<LocalResponse> answer;  // set: answer this, forward nothing
  std::vector<std::string> upstreams;   // "127.0.0.1:8081", in the order to try
  // The header lines to send upstream ("Name: value" CRLF each, values free of CR and LF); the
  // engine adds the framing ones.
  std::string upstream_fields;
  bool upgrade = false;      // relay as a tunnel after a 101 (the request's Upgrade is sent)
  std::string note;          // the policy's own, handed back in Completed
  std::string routed_host;   // the policy's name for the host it routed by, also handed back
};

// How a forwarded or answered request ended, for access logs.
struct ProxyOutcome {
  int status = 0;           // sent to the client; 0 when none was
  uint64_t body_bytes = 0;  // response body bytes sent to the client
  std::string upstream;     // the upstream that answered (empty for local answers)
  bool aborted = false;     // the response was cut off
  std::chrono::steady_clock::duration elapsed{};
  int retries = 0;  // upstreams passed over after they refused the connection
  // How the upstream failed the request, when it did (502/504 page, or a cut-off response).
  enum class UpstreamFailure { kNone, kUnreachable, kTimeout, kBroken };
  UpstreamFailure upstream_failure = UpstreamFailure::kNone;
};

class ProxyPolicy {
 public:
  virtual ~ProxyPolicy() = default;
  // Called on a loop thread for every request head: must not block.
  virtual ProxyRoute Route(const ProxyRequest& request) = 0;
  // The connection to upstream could not be made (refused, unreachable, timed out).
  virtual void ConnectionFailed(std::string_view upstream) = 0;
  // The page for an upstream that failed before its response began; timed_out when it was
  // silent for upstream_idle_timeout after accepting the request.
  virtual LocalResponse UpstreamFailed(const ProxyRequest& request, const ProxyRoute& route,
                                       std::string_view upstream, const Status& why,
                                       bool timed_out) = 0;
  virtual void Completed(const ProxyRequest& request, const ProxyRoute& route,
                         const ProxyOutcome& outcome) {}
};

struct ProxyServerOptions {
  std::string listen = "127.0.0.1:0";  // host:port; port 0 picks a free one
  size_t threads = 0;                  // event-loop threads; 0: one per core
  size_t max_connections = 16384;      // client connections at once; more are answered 503
  size_t max_header_bytes = 64 * 1024;
  uint64_t max_body_bytes = UINT64_MAX;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds client_read_timeout{60'000};
  std::chrono::milliseconds client_write_timeout{60'000};
  std::chrono::milliseconds client_idle_timeout{60'000};
  std::chrono::milliseconds upstream_connect_timeout{5'000};
  // An upstream silent (no byte either way) for this long fails its request.
  std::chrono::milliseconds upstream_idle_timeout{60'000};
  size_t upstream_keepalive = 1024;  // idle connections kept per upstream and loop thread
  std::chrono::milliseconds upstream_keepalive_timeout{30'000};
};

class ProxyServer {
 public:
  // Binds and starts the loops. policy must outlive the server.
  static Result<std::unique_ptr<ProxyServer>> Start(ProxyServerOptions options,
                                                    ProxyPolicy& policy);
  virtual ~ProxyServer() = default;
  virtual uint16_t port() const = 0;
  virtual std::string address() const = 0;  // "127.0.0.1:8080"
  virtual size_t threads() const = 0;
  // Client connections open now.
  virtual size_t connections() const = 0;
  // Graceful stop; see the header comment. Idempotent; the destructor calls it.
  virtual void Shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(10'000)) = 0;
};

}  // namespace slipway::net
