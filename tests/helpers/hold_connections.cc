// hold_connections PORT HOST COUNT: opens COUNT keep-alive connections to 127.0.0.1:PORT, sends
// one "GET /" with the given Host on each and reads its response, then holds them all idle,
// printing "holding COUNT" once they are, until it is killed. bench/gateway_wrk.sh measures a
// proxy's memory with it.
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

// Reads one response (head + Content-Length body) from fd; false on failure.
bool ReadResponse(int fd) {
  std::string got;
  char buf[4096];
  for (;;) {
    size_t end = got.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t at = got.find("Content-Length: ");
      size_t length = at == std::string::npos || at > end ? 0 : std::stoul(got.substr(at + 16));
      if (got.size() >= end + 4 + length) return true;
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    got.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: hold_connections PORT HOST COUNT\n");
    return 2;
  }
  int port = std::atoi(argv[1]);
  std::string request = std::string("GET / HTTP/1.1\r\nHost: ") + argv[2] + "\r\n\r\n";
  int count = std::atoi(argv[3]);
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
  std::vector<int> fds;
  constexpr int kBatch = 500;
  for (int i = 0; i < count; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
      std::fprintf(stderr, "hold_connections: connection %d failed\n", i);
      return 1;
    }
    fds.push_back(fd);
    if (fds.size() % kBatch == 0 || i + 1 == count) {
      size_t from = fds.size() - ((fds.size() - 1) % kBatch + 1);
      for (size_t j = from; j < fds.size(); ++j) {
        if (!ReadResponse(fds[j])) {
          std::fprintf(stderr, "hold_connections: no response on connection %zu\n", j);
          return 1;
        }
      }
    }
  }
  std::printf("holding %d\n", count);
  std::fflush(stdout);
  for (;;) ::pause();
}
