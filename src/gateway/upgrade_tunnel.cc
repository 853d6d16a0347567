#include "gateway/upgrade_tunnel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <thread>
#include <vector>

#include "gateway/header_fields.h"

namespace slipway::gateway {
namespace {

using Millis = std::chrono::milliseconds;
constexpr size_t kMaxHeadBytes = 64 * 1024;

// poll() on one descriptor with EINTR restarts; > 0 ready, 0 timeout, < 0 error.
int WaitFor(int fd, short events, Millis timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int wait_ms = -1;
    if (timeout.count() >= 0) {
      auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
      wait_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, INT_MAX));
    }
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, wait_ms);
    if (r >= 0) return r;
    if (errno != EINTR) return -1;
  }
}

// Reads through the bytes that arrived with the head first, then from the socket.
class BufferedUpstream {
 public:
  BufferedUpstream(UpstreamSocket& socket, std::string_view first, Millis timeout)
      : socket_(socket), pending_(first), timeout_(timeout) {}

  Result<size_t> Read(char* out, size_t n) {
    if (pos_ < pending_.size()) {
      size_t take = std::min(n, pending_.size() - pos_);
      std::memcpy(out, pending_.data() + pos_, take);
      pos_ += take;
      return take;
    }
    return socket_.ReadSome(out, n, timeout_);
  }

  // One CRLF-terminated line, without the CRLF.
  Result<std::string> ReadLine() {
    std::string line;
    char c;
    while (line.size() < 4096) {
      SLIPWAY_ASSIGN_OR_RETURN(size_t n, Read(&c, 1));
      if (n == 0) break;
      if (c == '\n') {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      line += c;
    }
    return Status::Unavailable("the instance's chunked response body is malformed or cut short");
  }

  // Sends exactly n bytes on to writer.
  Status Copy(uint64_t n, net::ResponseWriter& writer) {
    char buf[64 * 1024];
    while (n > 0) {
      SLIPWAY_ASSIGN_OR_RETURN(size_t got, Read(buf, std::min<uint64_t>(n, sizeof buf)));
      if (got == 0) return Status::Unavailable("the instance closed the connection mid-body");
      SLIPWAY_RETURN_IF_ERROR(writer.Write(std::string_view(buf, got)));
      n -= got;
    }
    return Status::Ok();
  }

 private:
  UpstreamSocket& socket_;
  std::string_view pending_;
  size_t pos_ = 0;
  Millis timeout_;
};

}  // namespace

bool IsUpgradeRequest(const net::HttpRequest& request) {
  if (request.method != "GET" || HasRequestBody(request)) return false;
  if (request.headers.GetOr("Upgrade", "").empty()) return false;
  for (const std::string& token : ConnectionTokens(request.headers)) {
    if (net::EqualsIgnoreCase(token, "upgrade")) return true;
  }
  return false;
}

Result<UpstreamSocket> UpstreamSocket::Connect(std::string_view address, Millis timeout) {
  size_t colon = address.rfind(':');
  std::string host(address.substr(0, colon == std::string_view::npos ? 0 : colon));
  if (host == "localhost") host = "127.0.0.1";
  unsigned port = 0;
  std::string_view port_text = colon == std::string_view::npos ? "" : address.substr(colon + 1);
  auto [end, err] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (port_text.empty() || err != std::errc() || port > 65535 ||
      ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Status::InvalidArgument("instance address \"" + std::string(address) +
                                   "\" is not IPv4 host:port; ctrl must record it as "
                                   "127.0.0.1:<port>");
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Unavailable(std::string("cannot create a socket: ") + strerror(errno));
  UpstreamSocket socket(fd);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      return Status::Unavailable("connecting to " + std::string(address) +
                                 " failed: " + strerror(errno));
    }
    if (WaitFor(fd, POLLOUT, timeout) <= 0) {
      return Status::Unavailable("connecting to " + std::string(address) + " timed out");
    }
    int error = 0;
    socklen_t len = sizeof error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
    if (error != 0) {
      return Status::Unavailable("connecting to " + std::string(address) +
                                 " failed: " + strerror(error));
    }
  }
  return socket;
}

UpstreamSocket::~UpstreamSocket() {
  if (fd_ >= 0) ::close(fd_);
}

void UpstreamSocket::Close() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

Status UpstreamSocket::WriteAll(std::string_view data, Millis timeout) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (WaitFor(fd_, POLLOUT, timeout) <= 0) {
        return Status::DeadlineExceeded("the instance stopped reading");
      }
      continue;
    }
    return Status::Unavailable(std::string("sending to the instance failed: ") + strerror(errno));
  }
  return Status::Ok();
}

Result<size_t> UpstreamSocket::ReadSome(char* buf, size_t n, Millis timeout) {
  for (;;) {
    ssize_t got = ::recv(fd_, buf, n, 0);
    if (got >= 0) return static_cast<size_t>(got);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int ready = WaitFor(fd_, POLLIN, timeout);
      if (ready == 0) return Status::DeadlineExceeded("the instance sent nothing in time");
      if (ready < 0) return size_t{0};
      continue;
    }
    if (errno == ECONNRESET) return size_t{0};
    return Status::Unavailable(std::string("reading from the instance failed: ") + strerror(errno));
  }
}

Result<UpstreamHead> ReadResponseHead(UpstreamSocket& upstream, Millis timeout) {
  std::string raw;
  size_t end;
  char buf[16 * 1024];
  while ((end = raw.find("\r\n\r\n")) == std::string::npos) {
    if (raw.size() > kMaxHeadBytes) {
      return Status::Unavailable("the instance's response head is larger than 64 KiB");
    }
    SLIPWAY_ASSIGN_OR_RETURN(size_t n, upstream.ReadSome(buf, sizeof buf, timeout));
    if (n == 0) return Status::Unavailable("the instance closed the connection without a response");
    raw.append(buf, n);
  }
  UpstreamHead head;
  head.after_head = raw.substr(end + 4);
  std::string_view text(raw.data(), end);
  size_t line_end = text.find("\r\n");
  std::string_view status_line = text.substr(0, line_end);
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12) {
    return Status::Unavailable("the instance did not answer with HTTP/1.x");
  }
  std::from_chars(status_line.data() + 9, status_line.data() + 12, head.status);
  size_t pos = line_end == std::string_view::npos ? text.size() : line_end + 2;
  while (pos < text.size()) {
    size_t e = text.find("\r\n", pos);
    if (e == std::string_view::npos) e = text.size();
    std::string_view line = text.substr(pos, e - pos);
    pos = e + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    head.headers.Add(std::string(line.substr(0, colon)), std::string(value));
  }
  return head;
}

Status CopyResponseBody(UpstreamSocket& upstream, const UpstreamHead& head,
                        net::ResponseWriter& writer, Millis timeout) {
  BufferedUpstream body(upstream, head.after_head, timeout);
  if (head.status == 204 || head.status == 304 || head.status < 200) return writer.Finish();
  if (net::EqualsIgnoreCase(head.headers.GetOr("Transfer-Encoding", ""), "chunked")) {
    for (;;) {
      SLIPWAY_ASSIGN_OR_RETURN(std::string size_line, body.ReadLine());
      uint64_t size = 0;
      auto [end, err] =
          std::from_chars(size_line.data(), size_line.data() + size_line.size(), size, 16);
      if (err != std::errc()) return Status::Unavailable("the instance sent a malformed chunk");
      if (size == 0) break;
      SLIPWAY_RETURN_IF_ERROR(body.Copy(size, writer));
      SLIPWAY_ASSIGN_OR_RETURN(std::string crlf, body.ReadLine());
    }
    for (;;) {  // trailers, up to the empty line
      SLIPWAY_ASSIGN_OR_RETURN(std::string trailer, body.ReadLine());
      if (trailer.empty()) break;
    }
  } else if (auto length = ContentLength(head.headers)) {
    SLIPWAY_RETURN_IF_ERROR(body.Copy(*length, writer));
  } else {
    char buf[64 * 1024];
    for (;;) {
      SLIPWAY_ASSIGN_OR_RETURN(size_t n, body.Read(buf, sizeof buf));
      if (n == 0) break;
      SLIPWAY_RETURN_IF_ERROR(writer.Write(std::string_view(buf, n)));
    }
  }
  return writer.Finish();
}

void Pump(UpstreamSocket& upstream, std::string_view first_bytes_for_client,
          net::UpgradedConnection& client) {
  if (!first_bytes_for_client.empty() && !client.Write(first_bytes_for_client).ok()) {
    upstream.Close();
    client.Close();
    return;
  }
  // When either direction ends, both connections close: an upgraded protocol has its own
  // close handshake inside the stream, so a half-open tunnel would only hold threads.
  std::thread to_client([&] {
    std::vector<char> buf(64 * 1024);
    for (;;) {
      auto n = upstream.ReadSome(buf.data(), buf.size(), Millis(-1));
      if (!n.ok() || *n == 0) break;
      if (!client.Write(std::string_view(buf.data(), *n)).ok()) break;
    }
    client.Close();
    upstream.Close();
  });
  std::vector<char> buf(64 * 1024);
  for (;;) {
    auto n = client.Read(buf.data(), buf.size());
    if (!n.ok() || *n == 0) break;
    if (!upstream.WriteAll(std::string_view(buf.data(), *n), Millis(60'000)).ok()) break;
  }
  upstream.Close();
  client.Close();
  to_client.join();
}

}  // namespace slipway::gateway
