// An HTTP/1.1 server (Boost.Beast underneath, hidden in http_server.cc).
//
// Each connection is served by its own thread with blocking I/O bounded by timeouts, so a
// handler is plain sequential code: it reads the request body as a stream through BodyReader
// and writes the response through ResponseWriter, and nothing forces a body into memory (a
// 1 GiB upload is read in chunks by the handler). Keep-alive is on; a response without a known
// length is sent chunked. Handlers run concurrently and must be thread-safe.
//
// Promises:
//  - header section larger than Options::max_header_bytes -> 431, connection closed;
//  - a request that is not valid HTTP/1.1 (Content-Length and Transfer-Encoding together, two
//    Content-Lengths, a Transfer-Encoding that does not end in chunked) -> 400, connection
//    closed, so its body is never read as a next request;
//  - a body larger than Options::max_body_bytes -> 413 before the handler sees it (when
//    Content-Length says so) or a Read error (chunked), connection closed;
//  - a peer silent for Options::read_timeout mid-request -> connection closed;
//    an idle keep-alive connection is closed after Options::idle_timeout;
//  - `Expect: 100-continue` is answered with 100 only when the handler first reads the body,
//    so a handler that refuses up front (401, 413) never receives the bytes;
//  - if a handler returns without reading the whole body, the connection is closed after the
//    response (the unread bytes are never parsed as a next request);
//  - if a handler returns without writing a response, the server sends 500;
//  - ResponseWriter::Abort closes the connection mid-response (never a complete-looking
//    truncated body); ResponseWriter::Upgrade answers 101 and hands the raw connection to the
//    handler until it returns (WebSocket);
//  - ResponseWriter::Abandoned tells a handler that streams a response slowly that its client
//    closed the connection or that the server is shutting down;
//  - Shutdown() stops accepting, lets in-flight requests finish within the grace period, closes
//    idle connections, and then returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "net/http.h"

namespace slipway::net {

struct HttpRequest {
  std::string method;          // "GET"
  std::string target;          // raw request target: "/bucket/key%20x?list-type=2"
  std::string path;            // raw path part of target (still percent-encoded)
  std::string query;           // raw query part of target, without '?'
  Headers headers;
  std::optional<uint64_t> content_length;  // absent for chunked or no body
  bool chunked = false;
  std::string remote_address;  // "127.0.0.1:53412"
};

// The request body as a stream. Read() returns the number of bytes read, 0 at the end of the
// body, or an error (timeout, peer gone, malformed chunk, over the size limit).
class BodyReader {
 public:
  virtual ~BodyReader() = default;
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
  // Bytes of the body delivered so far.
  virtual uint64_t bytes_read() const = 0;
  // Reads the rest of the body into a string; ResourceExhausted when it exceeds limit.
  Result<std::string> ReadAll(size_t limit);
};

// A connection handed over by ResponseWriter::Upgrade (WebSocket and other protocols that
// start with "101 Switching Protocols"): raw bytes both ways, no HTTP framing, no read timeout.
// One thread may Read while another Writes; Close may be called from any thread.
class UpgradedConnection {
 public:
  virtual ~UpgradedConnection() = default;
  // Bytes from the client, waiting as long as it takes; 0 once the client closed its side or
  // the connection was closed (Close(), or the server shutting down after its grace period).
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
  // Sends all of data (bounded by the write timeout).
  virtual Status Write(std::string_view data) = 0;
  // Ends the connection both ways; a Read blocked in another thread returns 0.
  virtual void Close() = 0;
};

class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  // Sends the status line and headers. With content_length the body must be exactly that long;
  // without it the body is sent chunked (or, for HEAD / 204 / 304, not at all). Content-Length
  // for HEAD responses may be given and no body is written.
  virtual Status WriteHead(int status, const Headers& headers,
                           std::optional<uint64_t> content_length) = 0;
  virtual Status Write(std::string_view data) = 0;
  // Writes bytes [offset, offset + length) of the open file fd as the next part of the body.
  // A connection sends them with sendfile(2) when the response has a Content-Length; the
  // default reads the file through a buffer and calls Write.
  virtual Status WriteFile(int fd, uint64_t offset, uint64_t length);
  // Ends the body (terminating chunk when chunked).
  virtual Status Finish() = 0;
  virtual bool head_written() const = 0;
  // Gives up on a response that cannot be completed (a proxied upstream broke mid-body): the
  // connection is closed without ending the body, so the client sees a truncated response
  // instead of a complete-looking one. Before WriteHead, the client gets no response at all.
  // (The default, for writers that are not connections such as test doubles, does nothing.)
  virtual void Abort() {}
  // Answers "101 Switching Protocols" with headers (Upgrade and "Connection: Upgrade" among
  // them) and hands the connection over; the request must have no body left to read. The
  // connection stays valid until the handler returns, and is closed then.
  virtual Result<UpgradedConnection*> Upgrade(const Headers& headers) {
    return Status::Unimplemented("this response writer cannot hand over a connection");
  }
  // True once nobody will read more of this response: the client closed the connection, or
  // the server is shutting down. A handler that waits between writes (a long-lived stream)
  // asks this while it waits and ends its response. Writers that are not connections say false.
  virtual bool Abandoned() const { return false; }

  // WriteHead + Write + Finish for a body already in memory.
  Status Send(int status, const Headers& headers, std::string_view body);
};

using HttpHandler = std::function<void(const HttpRequest&, BodyReader&, ResponseWriter&)>;

class HttpServer {
 public:
  struct Options {
    std::string listen = "127.0.0.1:0";  // host:port; port 0 picks a free one
    size_t max_header_bytes = 64 * 1024;
    uint64_t max_body_bytes = UINT64_MAX;
    std::chrono::milliseconds read_timeout{30'000};
    std::chrono::milliseconds write_timeout{30'000};
    std::chrono::milliseconds idle_timeout{60'000};
    size_t max_connections = 1024;
    // The setting an operator raises max_connections with ("--max-connections
    // (CTRL_MAX_CONNECTIONS)"): the 503 a client gets past the cap names it, and so does the
    // warning at start when the open file limit is below the cap. Empty: a generic sentence.
    std::string max_connections_setting;
  };

  // Binds and starts serving in background threads.
  static Result<std::unique_ptr<HttpServer>> Start(Options options, HttpHandler handler);

  virtual ~HttpServer() = default;
  // The bound port (useful with port 0).
  virtual uint16_t port() const = 0;
  // "127.0.0.1:9000"
  virtual std::string address() const = 0;
  // Graceful stop; see the header comment. Idempotent; the destructor calls it.
  virtual void Shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(10'000)) = 0;
};

// Why an open file limit (RLIMIT_NOFILE) of `limit` cannot carry max_connections connections
// (each is a descriptor, and the process needs some of its own), as a sentence naming the
// setting; empty when it can. HttpServer::Start raises its soft limit towards the hard one
// first, and logs this warning when even that is not enough.
std::string OpenFileLimitProblem(uint64_t limit, size_t max_connections,
                                 std::string_view setting);

// Blocks the calling thread until SIGINT or SIGTERM arrives; returns the signal number.
// Call before starting threads that should not receive the signal (it blocks them process-wide).
int WaitForTerminationSignal();
// Blocks SIGINT and SIGTERM in the calling thread and threads it creates later; call first
// thing in main() of a long-running command so that WaitForTerminationSignal() gets them.
void BlockTerminationSignals();

}  // namespace slipway::net
