#include "krane/readiness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/http_client.h"

namespace slipway::krane {
namespace {

// After a connect through a forwarder: the connection is the app's when it stays open for
// kForwardedHold or brings data; an end of stream or a reset is the forwarder giving up.
ReadinessResult HoldsOpen(int fd, const std::string& where) {
  pollfd pfd{fd, POLLIN | POLLRDHUP, 0};
  int rc = ::poll(&pfd, 1, static_cast<int>(kForwardedHold.count()));
  if (rc == 0) return {true, ""};
  if (rc < 0) return {false, fmt::format("waiting on {} failed: {}", where, std::strerror(errno))};
  char byte = 0;
  ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return {true, ""};
  return {false, fmt::format("{} accepts connections but closes them at once: the port is "
                             "published, but the app inside the container does not listen yet",
                             where)};
}

// A non-blocking connect bounded by timeout; the connection is closed at once (after
// HoldsOpen when the route is forwarded).
ReadinessResult ProbeTcp(const std::string& host, int port, std::chrono::milliseconds timeout,
                         ProbeRoute route) {
  const std::string where = fmt::format("{}:{}", host, port);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return {false, fmt::format("\"{}\" is not an IPv4 address krane can probe", host)};
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return {false,
            fmt::format("cannot open a socket to probe {}: {}", where, std::strerror(errno))};
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = rc == 0 ? 0 : errno;
  if (rc != 0 && err == EINPROGRESS) {
    pollfd pfd{fd, POLLOUT, 0};
    rc = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
    if (rc == 0) {
      err = ETIMEDOUT;
    } else if (rc < 0) {
      err = errno;
    } else {
      socklen_t len = sizeof(err);
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    }
  }
  if (err == 0) {
    ReadinessResult result =
        route == ProbeRoute::kForwarded ? HoldsOpen(fd, where) : ReadinessResult{true, ""};
    ::close(fd);
    return result;
  }
  ::close(fd);
  if (err == ECONNREFUSED)
    return {false, fmt::format("nothing accepts connections on {} yet", where)};
  return {false, fmt::format("connecting to {} failed: {}", where, std::strerror(err))};
}

ReadinessResult ProbeHttp(const std::string& host, int port, const std::string& path,
                          std::chrono::milliseconds timeout) {
  // One client for all probes: it keeps no state between calls that matters here.
  static net::HttpClient* client = new net::HttpClient();
  net::ClientRequest req;
  req.url = fmt::format("http://{}:{}{}", host, port, path);
  req.connect_timeout = timeout;
  req.timeout = timeout;
  req.max_attempts = 1;
  // Only the status matters; a large health page must not count against a size limit.
  req.on_body = [](std::string_view) { return true; };
  auto resp = client->Do(req);
  if (!resp.ok())
    return {false, fmt::format("GET {} failed: {}", req.url, resp.status().message())};
  if (resp->status >= 200 && resp->status < 400) return {true, ""};
  return {false, fmt::format("GET {} answered HTTP {} (2xx or 3xx needed)", req.url, resp->status)};
}

}  // namespace

ReadinessResult ProbeReadiness(const std::string& host, int port,
                               const std::string& health_check_path,
                               std::chrono::milliseconds timeout, ProbeRoute route) {
  if (port <= 0 || port > 65535) return {false, fmt::format("no valid port ({}) to probe", port)};
  // Through a forwarder an HTTP answer needs the app, so only the TCP probe differs.
  if (health_check_path.empty()) return ProbeTcp(host, port, timeout, route);
  return ProbeHttp(host, port, health_check_path, timeout);
}

}  // namespace slipway::krane
