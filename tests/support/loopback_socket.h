// A raw TCP client on 127.0.0.1, for tests that speak what HTTP clients will not: malformed or
// partial requests, pipelining, upgraded connections. Reads have a receive timeout, so a broken
// server fails the test instead of hanging it. Header-only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace slipway::testing {

class LoopbackSocket {
 public:
  explicit LoopbackSocket(uint16_t port, std::chrono::seconds receive_timeout = std::chrono::seconds(5)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{static_cast<time_t>(receive_timeout.count()), 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~LoopbackSocket() { ::close(fd_); }
  LoopbackSocket(const LoopbackSocket&) = delete;
  LoopbackSocket& operator=(const LoopbackSocket&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads exactly n bytes (from what was buffered first); false on EOF or timeout.
  bool ReadExactly(size_t n, std::string* out) {
    while (pending_.size() < n) {
      if (!Fill()) return false;
    }
    *out = pending_.substr(0, n);
    pending_.erase(0, n);
    return true;
  }

  // One line without its CRLF; false on EOF or timeout.
  bool ReadLine(std::string* line) {
    size_t eol;
    while ((eol = pending_.find("\r\n")) == std::string::npos) {
      if (!Fill()) return false;
    }
    *line = pending_.substr(0, eol);
    pending_.erase(0, eol + 2);
    return true;
  }

  // A message head up to and including the empty line; "" on EOF or timeout.
  std::string ReadHead() {
    size_t end;
    while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return "";
    }
    std::string head = pending_.substr(0, end + 4);
    pending_.erase(0, end + 4);
    return head;
  }

  // True when the peer closes (EOF or reset) with nothing more to read, waiting up to the
  // receive timeout.
  bool Closed() {
    if (!pending_.empty()) return false;
    char c;
    return ::recv(fd_, &c, 1, 0) <= 0;
  }

  // True when the peer closes the connection within timeout (EOF or reset), with no further
  // bytes arriving first.
  bool ClosedWithin(std::chrono::milliseconds timeout) {
    if (!pending_.empty()) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    return Closed();
  }

 private:
  bool Fill() {
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

}  // namespace slipway::testing
