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

// A non-blocking connect bounded by timeout; the connection is closed at once.
ReadinessResult ProbeTcp(const std::string& host, int port, std::chrono::milliseconds timeout) {
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
  ::close(fd);
  if (err == 0) return {true, ""};
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
                               std::chrono::milliseconds timeout) {
  if (port <= 0 || port > 65535) return {false, fmt::format("no valid port ({}) to probe", port)};
  if (health_check_path.empty()) return ProbeTcp(host, port, timeout);
  return ProbeHttp(host, port, health_check_path, timeout);
}

}  // namespace slipway::krane
