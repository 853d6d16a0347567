// A minimal app for benchmarks: serves the same small body on every path, with keep-alive.
//
//   static_upstream LISTEN [BODY_BYTES]
//
// Prints "ready" once listening; SIGTERM or SIGINT stops it (exit 0).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "net/http_server.h"

int main(int argc, char** argv) {
  using namespace slipway;
  if (argc < 2) {
    std::fprintf(stderr, "usage: static_upstream LISTEN [BODY_BYTES]\n");
    return 2;
  }
  net::BlockTerminationSignals();
  size_t size = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 612;
  const std::string body(size, 'x');
  net::HttpServer::Options options;
  options.listen = argv[1];
  options.max_connections = 4096;
  auto server = net::HttpServer::Start(
      options, [&body](const net::HttpRequest&, net::BodyReader&, net::ResponseWriter& w) {
        (void)w.Send(200, {{"Content-Type", "text/html"}}, body);
      });
  if (!server.ok()) {
    std::fprintf(stderr, "static_upstream: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  net::WaitForTerminationSignal();
  (*server)->Shutdown();
  return 0;
}
