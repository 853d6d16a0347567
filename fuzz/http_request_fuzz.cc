// The HTTP/1.1 request side of HttpServer: the request parser as the server configures it
// (header and body limits, chunked bodies, Expect: 100-continue, pipelining, unread bodies),
// the HttpRequest built from it, and the query and path decoding handlers apply next.
//
// Each input is sent as is over a fresh loopback connection to one real HttpServer; then the
// client half-closes and reads until the server closes. The promises checked: the server never
// crashes, always ends the connection (no hang), and answers only with HTTP/1.x responses.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fuzz_input.h"
#include "net/http.h"
#include "net/http_server.h"

namespace {

using namespace slipway;

// Reads bodies whole, or not at all (/early), or half (/half); answers chunked on /chunked.
void Handle(const net::HttpRequest& request, net::BodyReader& body, net::ResponseWriter& response) {
  auto params = net::ParseQuery(request.query);
  std::string path;
  bool path_ok = net::UriDecode(request.path, &path);
  for (const auto& [name, value] : request.headers) {
    SLIPWAY_FUZZ_CHECK(!name.empty());
  }
  std::string summary = std::to_string(params.size()) + (path_ok ? " ok\n" : " bad\n");
  if (request.path == "/early") {
    (void)response.Send(401, {{"Content-Type", "text/plain"}}, summary);
    return;
  }
  if (request.path == "/half") {
    char buf[7];
    (void)body.Read(buf, sizeof(buf));
    (void)response.Send(200, {}, summary);
    return;
  }
  auto all = body.ReadAll(16 * 1024);
  if (!all.ok()) {
    (void)response.Send(all.status().code() == Code::kResourceExhausted ? 413 : 400, {},
                        all.status().message());
    return;
  }
  if (request.content_length) SLIPWAY_FUZZ_CHECK(all->size() == *request.content_length);
  if (request.path == "/chunked") {
    if (!response.WriteHead(200, {}, std::nullopt).ok()) return;
    (void)response.Write(summary);
    (void)response.Write(*all);
    (void)response.Finish();
    return;
  }
  (void)response.Send(200, {}, summary + *all);
}

net::HttpServer& Server() {
  static net::HttpServer* server = [] {
    spdlog::set_level(spdlog::level::off);
    net::HttpServer::Options options;
    options.max_header_bytes = 4 * 1024;
    options.max_body_bytes = 64 * 1024;
    options.read_timeout = std::chrono::milliseconds(2000);
    options.write_timeout = std::chrono::milliseconds(2000);
    options.idle_timeout = std::chrono::milliseconds(2000);
    auto started = net::HttpServer::Start(options, Handle);
    if (!started.ok()) {
      fprintf(stderr, "cannot start the server: %s\n", started.status().message().c_str());
      abort();
    }
    return started->release();
  }();
  return *server;
}

}  // namespace

// The server frees a connection's buffers on its own thread, a moment after the client has seen
// the connection close: libFuzzer's per-input leak check would count them as leaked. Leaks of
// the server are the unit tests' to find (scripts/test.sh --sanitize runs LeakSanitizer).
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  static std::vector<char*> args;
  args.assign(*argv, *argv + *argc);
  static char no_leaks[] = "-detect_leaks=0";
  args.push_back(no_leaks);
  args.push_back(nullptr);
  *argc = static_cast<int>(args.size()) - 1;
  *argv = args.data();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint16_t port = Server().port();
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  SLIPWAY_FUZZ_CHECK(fd >= 0);
  // Reset on close: a fuzzing run opens millions of connections, which TIME_WAIT would exhaust.
  linger no_linger{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &no_linger, sizeof(no_linger));
  // Longer than any of the server's timeouts: past it, the server hung on this input.
  timeval wait{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof(wait));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  SLIPWAY_FUZZ_CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  size_t sent = 0;
  while (sent < size) {
    ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server closed early (431, 413): what it says is read below
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string answer;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      answer.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      fprintf(stderr, "the server neither answered nor closed the connection in 10 s\n");
      abort();
    }
    break;  // closed (or reset after a refusal)
  }
  ::close(fd);
  // An HTTP/1.1 response, or HTTP/1.0 to an HTTP/1.0 request.
  if (!answer.empty()) SLIPWAY_FUZZ_CHECK(answer.rfind("HTTP/1.1 ", 0) == 0 || answer.rfind("HTTP/1.0 ", 0) == 0);
  return 0;
}
