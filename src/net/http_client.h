// An HTTP client on libcurl: TCP and unix sockets, bodies from memory, a file, or a callback,
// responses to memory, a file, or a callback, timeouts, and retries with exponential backoff
// for idempotent requests (connect failures, 502/503/504, and transport errors before any
// response byte). Thread-safe: one HttpClient may be used from many threads (each call uses
// its own easy handle; keep-alive connections are reused per thread, or across threads with
// ConnectionReuse::kShared).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/status.h"
#include "net/http.h"

namespace slipway::net {

struct ClientRequest {
  std::string method = "GET";
  // "http://127.0.0.1:9000/b/k"; with unix_socket, host is ignored. The path is sent as is
  // (dot segments are not removed).
  std::string url;
  Headers headers;
  std::string unix_socket;         // "/var/run/docker.sock" to speak HTTP over a unix socket

  // HTTPS: the server is verified against ca_file when set (else the system's CAs); a client
  // certificate and key (PEM files) authenticate the caller when set.
  std::string ca_file;
  std::string client_cert_file;
  std::string client_key_file;

  // The body: at most one of these. A file is streamed, never loaded.
  std::string body;
  std::string body_file;
  // Streaming source: fills buf, returns bytes written, 0 at the end. Requires body_size or
  // sends chunked.
  std::function<Result<size_t>(char* buf, size_t n)> body_source;
  std::optional<uint64_t> body_size;  // Content-Length for body_file/body_source

  // Where the response body goes: by default into ClientResponse::body (bounded by
  // max_response_bytes); or streamed to a file; or to a callback (return false to abort).
  std::string response_file;
  std::function<bool(std::string_view chunk)> on_body;
  uint64_t max_response_bytes = 64ull * 1024 * 1024;

  // Called once with the final response's status and header fields (interim 1xx responses and
  // responses that will be retried are skipped), before any of its body reaches on_body or a
  // file: a proxy sends its own response head from here. Return false to abort (Canceled).
  std::function<bool(int status, const Headers& headers)> on_headers;
  // Called when a connection to the server is ready (new or reused), just before the request
  // goes out. A transport failure without this call means the server was never reached, so the
  // request may safely be sent somewhere else, whatever its method.
  std::function<void()> on_connected;

  // Checked about once a second while the request runs: returning true aborts it (Canceled).
  // For long-lived streams (a watch) that must end when their owner goes away.
  std::function<bool()> cancelled;

  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds timeout{0};        // whole request; 0 = none
  std::chrono::milliseconds low_speed_timeout{60'000};  // abort if < 1 byte/s for this long

  // Retries apply only when idempotent is true (defaults to true for GET/HEAD/PUT/DELETE/OPTIONS
  // when unset) and the body can be replayed (memory or file).
  std::optional<bool> idempotent;
  int max_attempts = 3;
  std::chrono::milliseconds initial_backoff{200};
};

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;  // empty when streamed to a file or callback
};

namespace detail {
class CurlHandlePool;
}

class HttpClient {
 public:
  // Where idle keep-alive connections wait between requests.
  enum class ConnectionReuse {
    // Each thread keeps its own: consecutive calls from one thread reuse them (the default).
    kPerThread,
    // One pool for this client: a call from any thread reuses a connection to the same origin
    // that an earlier call, from any thread, left idle. For servers whose threads are
    // short-lived, such as one thread per client connection (the gateway).
    kShared,
  };

  explicit HttpClient(ConnectionReuse reuse = ConnectionReuse::kPerThread);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Transport failures are Unavailable (connect refused, reset) or DeadlineExceeded (timeouts);
  // any HTTP status, 4xx and 5xx included, is a successful Result for the caller to judge.
  Result<ClientResponse> Do(const ClientRequest& request);

 private:
  std::unique_ptr<detail::CurlHandlePool> pool_;  // null with kPerThread
};

}  // namespace slipway::net
