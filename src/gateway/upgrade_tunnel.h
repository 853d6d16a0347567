// The pieces the gateway needs to proxy a request that switches protocols (WebSocket:
// "Connection: Upgrade" + "Upgrade: websocket"): libcurl cannot hand over a connection after
// "101 Switching Protocols", so these requests go over a plain TCP connection of their own,
// and after the 101 bytes are copied both ways until either side ends.
//
// Thread-safety: an UpstreamSocket is used by one request; Pump uses one extra thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "net/http.h"
#include "net/http_server.h"

namespace slipway::gateway {

// Whether the request asks to switch protocols (a Connection token "upgrade" and an Upgrade
// field) and can be tunnelled (a GET without a body).
bool IsUpgradeRequest(const net::HttpRequest& request);

// A TCP connection to an instance.
class UpstreamSocket {
 public:
  // Unavailable when the connection cannot be made within timeout: nothing was sent.
  static Result<UpstreamSocket> Connect(std::string_view address,
                                        std::chrono::milliseconds timeout);
  UpstreamSocket(UpstreamSocket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  UpstreamSocket& operator=(UpstreamSocket&&) = delete;
  ~UpstreamSocket();

  Status WriteAll(std::string_view data, std::chrono::milliseconds timeout);
  // Bytes read (0 at the end of the stream); timeout < 0 waits as long as it takes.
  Result<size_t> ReadSome(char* buf, size_t n, std::chrono::milliseconds timeout);
  // Ends the connection both ways; a ReadSome blocked in another thread returns 0.
  void Close();

 private:
  explicit UpstreamSocket(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// The head of the instance's response and the bytes that arrived after it.
struct UpstreamHead {
  int status = 0;
  net::Headers headers;
  std::string after_head;
};

// Reads the response head (up to 64 KiB), waiting at most timeout for each read.
Result<UpstreamHead> ReadResponseHead(UpstreamSocket& upstream, std::chrono::milliseconds timeout);

// Forwards the body of a response that did not switch protocols (Content-Length, chunked, or up
// to the end of the connection) to writer, whose head was already written.
Status CopyResponseBody(UpstreamSocket& upstream, const UpstreamHead& head,
                        net::ResponseWriter& writer, std::chrono::milliseconds timeout);

// Copies bytes both ways until either side ends, then closes both.
void Pump(UpstreamSocket& upstream, std::string_view first_bytes_for_client,
          net::UpgradedConnection& client);

}  // namespace slipway::gateway
