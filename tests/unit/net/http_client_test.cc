#include "net/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "net/http_server.h"
#include "support/test_support.h"

namespace slipway::net {
namespace {

using namespace std::chrono_literals;

// What the test server saw of one request.
struct SeenRequest {
  std::string method;
  std::string target;
  Headers headers;
  std::string body;
};

// A deliberately small HTTP/1.1 server on a raw socket (TCP or unix), one connection at a time,
// "Connection: close" after every response. It is independent of slipway's own server so the
// client is tested against bytes we control.
class RawServer {
 public:
  // Returns the complete raw response.
  using Handler = std::function<std::string(const SeenRequest&, int index)>;

  explicit RawServer(Handler handler, std::string unix_path = "")
      : handler_(std::move(handler)), unix_path_(std::move(unix_path)) {
    if (unix_path_.empty()) {
      fd_ = socket(AF_INET, SOCK_STREAM, 0);
      int one = 1;
      setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
      socklen_t len = sizeof addr;
      getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.sin_port);
    } else {
      fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, unix_path_.c_str(), sizeof addr.sun_path - 1);
      EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    }
    EXPECT_EQ(listen(fd_, 16), 0);
    thread_ = std::thread([this] { Serve(); });
  }

  ~RawServer() {
    stopping_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }

  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  int requests() const { return count_; }
  std::vector<SeenRequest> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

  static std::string Response(int status, std::string_view body,
                              std::string_view extra_headers = "") {
    return "HTTP/1.1 " + std::to_string(status) +
           " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n" +
           std::string(extra_headers) + "\r\n" + std::string(body);
  }

 private:
  void Serve() {
    while (!stopping_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      SeenRequest req;
      if (ReadRequest(c, &req)) {
        int index = count_++;
        {
          std::lock_guard<std::mutex> lock(mu_);
          seen_.push_back(req);
        }
        std::string out = handler_(req, index);
        size_t off = 0;
        while (off < out.size()) {
          ssize_t w = send(c, out.data() + off, out.size() - off, MSG_NOSIGNAL);
          if (w <= 0) break;
          off += static_cast<size_t>(w);
        }
      }
      close(c);
    }
  }

  static bool ReadRequest(int c, SeenRequest* req) {
    std::string buf;
    char tmp[65536];
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = recv(c, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf.append(tmp, static_cast<size_t>(n));
    }
    std::string head = buf.substr(0, end);
    std::string rest = buf.substr(end + 4);
    size_t line_end = head.find("\r\n");
    std::string request_line = head.substr(0, line_end);
    req->method = request_line.substr(0, request_line.find(' '));
    size_t t0 = request_line.find(' ') + 1;
    req->target = request_line.substr(t0, request_line.rfind(' ') - t0);
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      std::string line = head.substr(pos, e - pos);
      size_t colon = line.find(':');
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      req->headers.Add(line.substr(0, colon), value);
      pos = e + 2;
    }
    auto more = [&]() {
      ssize_t n = recv(c, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      rest.append(tmp, static_cast<size_t>(n));
      return true;
    };
    if (auto cl = req->headers.Get("Content-Length")) {
      size_t want = std::stoull(std::string(*cl));
      while (rest.size() < want) {
        if (!more()) return false;
      }
      req->body = rest.substr(0, want);
    } else if (EqualsIgnoreCase(req->headers.GetOr("Transfer-Encoding", ""), "chunked")) {
      size_t p = 0;
      for (;;) {
        size_t e;
        while ((e = rest.find("\r\n", p)) == std::string::npos) {
          if (!more()) return false;
        }
        size_t len = std::stoull(rest.substr(p, e - p), nullptr, 16);
        while (rest.size() < e + 2 + len + 2) {
          if (!more()) return false;
        }
        req->body += rest.substr(e + 2, len);
        p = e + 2 + len + 2;
        if (len == 0) break;
      }
    }
    return true;
  }

  Handler handler_;
  std::string unix_path_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> count_{0};
  std::mutex mu_;
  std::vector<SeenRequest> seen_;
  std::thread thread_;
};

TEST(HttpClientTest, GetIntoMemorySendsHeadersAndReturnsStatusHeadersBody) {
  RawServer server([](const SeenRequest&, int) {
    return RawServer::Response(200, "hello", "X-Answer: 42\r\n");
  });
  HttpClient client;
  ClientRequest req;
  req.url = server.url("/a/b?c=1");
  req.headers.Add("X-Trace", "t-1");
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "hello");
  EXPECT_EQ(res->headers.GetOr("x-answer", ""), "42");
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].target, "/a/b?c=1");
  EXPECT_EQ(seen[0].headers.GetOr("X-Trace", ""), "t-1");
}

TEST(HttpClientTest, ErrorStatusIsASuccessfulResult) {
  RawServer server([](const SeenRequest&, int) { return RawServer::Response(404, "nope"); });
  HttpClient client;
  ClientRequest req;
  req.url = server.url("/missing");
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->body, "nope");
  EXPECT_EQ(server.requests(), 1);  // 404 is not retried
}

TEST(HttpClientTest, DownloadsToFileWithoutLeavingTemporaryFiles) {
  testing::TempDir dir;
  auto source = dir.path() / "source.bin";
  testing::WriteRandomFile(source, 3 * 1024 * 1024 + 17, 7);
  std::string content = testing::ReadFile(source);
  RawServer server([&](const SeenRequest&, int) { return RawServer::Response(200, content); });
  HttpClient client;
  ClientRequest req;
  req.url = server.url("/blob");
  req.response_file = (dir.path() / "out.bin").string();
  req.max_response_bytes = 1024;  // the limit is for memory bodies, not files
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(res->body.empty());
  EXPECT_EQ(testing::FileSha256(dir.path() / "out.bin"), testing::FileSha256(source));
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 2) << "a temporary download file was left behind";
}

TEST(HttpClientTest, ErrorResponseNeverReplacesTheDownloadTarget) {
  testing::TempDir dir;
  auto target = dir.path() / "keep.txt";
  {
    std::FILE* f = std::fopen(target.c_str(), "wb");
    std::fputs("previous", f);
    std::fclose(f);
  }
  RawServer server([](const SeenRequest&, int) { return RawServer::Response(403, "denied"); });
  HttpClient client;
  ClientRequest req;
  req.url = server.url("/blob");
  req.response_file = target.string();
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 403);
  EXPECT_EQ(res->body, "denied");
  EXPECT_EQ(testing::ReadFile(target), "previous");
}

TEST(HttpClientTest, UploadsFileWithContentLengthAndNoExpect) {
  testing::TempDir dir;
  auto source = dir.path() / "upload.bin";
  testing::WriteRandomFile(source, 2 * 1024 * 1024 + 3, 11);
  std::string content = testing::ReadFile(source);
  RawServer server([&](const SeenRequest& r, int) {
    bool good = r.body == content &&
                r.headers.GetOr("Content-Length", "") == std::to_string(content.size()) &&
                !r.headers.Has("Transfer-Encoding") && !r.headers.Has("Expect");
    return RawServer::Response(good ? 200 : 400, good ? "stored" : "mismatch");
  });
  HttpClient client;
  ClientRequest req;
  req.method = "PUT";
  req.url = server.url("/bucket/key");
  req.body_file = source.string();
  req.headers.Add("Content-Type", "application/octet-stream");
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200) << res->body;
  ASSERT_EQ(server.seen().size(), 1u);
  EXPECT_EQ(server.seen()[0].method, "PUT");
  EXPECT_EQ(server.seen()[0].headers.GetOr("Content-Type", ""), "application/octet-stream");
}

TEST(HttpClientTest, StreamsBodySourceChunkedWhenSizeUnknown) {
  RawServer server([](const SeenRequest& r, int) {
    return RawServer::Response(200, r.headers.GetOr("Transfer-Encoding", "") + ":" + r.body);
  });
  HttpClient client;
  ClientRequest req;
  req.method = "POST";
  req.url = server.url("/stream");
  int calls = 0;
  req.body_source = [&](char* buf, size_t n) -> Result<size_t> {
    if (calls == 3) return size_t{0};
    ++calls;
    std::string part = "part" + std::to_string(calls) + ";";
    std::memcpy(buf, part.data(), part.size());
    return part.size();
  };
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->body, "chunked:part1;part2;part3;");
}

TEST(HttpClientTest, RetriesGetAfter503ThenSucceeds) {
  RawServer server([](const SeenRequest&, int i) {
    return i == 0 ? RawServer::Response(503, "busy") : RawServer::Response(200, "ready");
  });
  HttpClient client;
  ClientRequest req;
  req.url = server.url("/flaky");
  req.initial_backoff = 10ms;
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ready");
  EXPECT_EQ(server.requests(), 2);
}

TEST(HttpClientTest, RetriedFileUploadIsReplayedFromTheStart) {
  testing::TempDir dir;
  auto source = dir.path() / "upload.bin";
  testing::WriteRandomFile(source, 100'000, 3);
  std::string content = testing::ReadFile(source);
  RawServer server([&](const SeenRequest& r, int i) {
    if (i < 2) return RawServer::Response(502, "");
    return RawServer::Response(r.body == content ? 200 : 400, "");
  });
  HttpClient client;
  ClientRequest req;
  req.method = "PUT";
  req.url = server.url("/k");
  req.body_file = source.string();
  req.initial_backoff = 5ms;
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(server.requests(), 3);
}

TEST(HttpClientTest, GivesUpAfterMaxAttemptsAndReturnsTheLastResponse) {
  RawServer server([](const SeenRequest&, int) { return RawServer::Response(504, "late"); });
  HttpClient client;
  ClientRequest req;
  req.url = server.url("/down");
  req.initial_backoff = 5ms;
  req.max_attempts = 2;
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 504);
  EXPECT_EQ(res->body, "late");
  EXPECT_EQ(server.requests(), 2);
}

TEST(HttpClientTest, DoesNotRetryPost) {
  RawServer server([](const SeenRequest&, int) { return RawServer::Response(503, "busy"); });
  HttpClient client;
  ClientRequest req;
  req.method = "POST";
  req.url = server.url("/create");
  req.body = "{}";
  req.initial_backoff = 5ms;
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(server.requests(), 1);
  EXPECT_EQ(server.seen()[0].body, "{}");
}

TEST(HttpClientTest, DoesNotRetryNonReplayableBody) {
  RawServer server([](const SeenRequest&, int) { return RawServer::Response(503, ""); });
  HttpClient client;
  ClientRequest req;
  req.method = "PUT";
  req.url = server.url("/k");
  req.body_size = 3;
  bool sent = false;
  req.body_source = [&](char* buf, size_t) -> Result<size_t> {
    if (sent) return size_t{0};
    sent = true;
    std::memcpy(buf, "abc", 3);
    return size_t{3};
  };
  req.initial_backoff = 5ms;
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(server.requests(), 1);
  EXPECT_EQ(server.seen()[0].headers.GetOr("Content-Length", ""), "3");
}

TEST(HttpClientTest, TimeoutIsDeadlineExceededNamingTheUrl) {
  RawServer server([](const SeenRequest&, int) {
    std::this_thread::sleep_for(800ms);
    return RawServer::Response(200, "too late");
  });
  HttpClient client;
  ClientRequest req;
  req.url = server.url("/slow");
  req.timeout = 150ms;
  auto start = std::chrono::steady_clock::now();
  auto res = client.Do(req);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kDeadlineExceeded) << res.status().ToString();
  EXPECT_NE(res.status().message().find(req.url), std::string::npos) << res.status().message();
  EXPECT_LT(elapsed, 700ms);  // neither waited for the server nor retried
}

TEST(HttpClientTest, ConnectionRefusedIsUnavailableAfterRetries) {
  HttpClient client;
  ClientRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(testing::FreePort()) + "/x";
  req.initial_backoff = 5ms;
  auto res = client.Do(req);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kUnavailable) << res.status().ToString();
  EXPECT_NE(res.status().message().find(req.url), std::string::npos) << res.status().message();
}

TEST(HttpClientTest, ConnectionRetryReachesAServerThatComesUpLate) {
  int port = testing::FreePort();
  HttpClient client;
  ClientRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/x";
  req.initial_backoff = 300ms;
  // Nothing listens on the first attempt; the server binds before the retry.
  std::thread late([&] {
    std::this_thread::sleep_for(100ms);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    listen(fd, 4);
    int c = accept(fd, nullptr, nullptr);
    char buf[4096];
    recv(c, buf, sizeof buf, 0);
    std::string out = RawServer::Response(200, "late but here");
    send(c, out.data(), out.size(), MSG_NOSIGNAL);
    close(c);
    close(fd);
  });
  auto res = client.Do(req);
  late.join();
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->body, "late but here");
}

TEST(HttpClientTest, ResponseOverLimitIsResourceExhausted) {
  RawServer server(
      [](const SeenRequest&, int) { return RawServer::Response(200, std::string(10'000, 'x')); });
  HttpClient client;
  ClientRequest req;
  req.url = server.url("/big");
  req.max_response_bytes = 1000;
  auto res = client.Do(req);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kResourceExhausted) << res.status().ToString();
}

TEST(HttpClientTest, OnBodyReceivesTheStreamAndCanStopIt) {
  RawServer server(
      [](const SeenRequest&, int) { return RawServer::Response(200, std::string(50'000, 'y')); });
  HttpClient client;
  ClientRequest req;
  req.url = server.url("/stream");
  std::string got;
  req.on_body = [&](std::string_view chunk) {
    got += chunk;
    return true;
  };
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(got, std::string(50'000, 'y'));
  EXPECT_TRUE(res->body.empty());

  req.on_body = [](std::string_view) { return false; };
  auto stopped = client.Do(req);
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), Code::kCanceled) << stopped.status().ToString();
}

TEST(HttpClientTest, SpeaksHttpOverUnixSocket) {
  testing::TempDir dir;
  std::string sock = (dir.path() / "api.sock").string();
  RawServer server(
      [](const SeenRequest& r, int) { return RawServer::Response(200, "unix:" + r.target); }, sock);
  HttpClient client;
  ClientRequest req;
  req.url = "http://localhost/v1.41/version";
  req.unix_socket = sock;
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "unix:/v1.41/version");
}

TEST(HttpClientTest, OnHeadersSeesTheFinalResponseBeforeItsBody) {
  RawServer server([](const SeenRequest&, int) {
    return std::string("HTTP/1.1 100 Continue\r\n\r\n") +
           RawServer::Response(201, "created body", "X-Kind: final\r\n");
  });
  HttpClient client;
  ClientRequest req;
  req.method = "POST";
  req.url = server.url("/h");
  req.body = "payload";
  std::vector<std::string> events;
  req.on_headers = [&](int status, const Headers& headers) {
    events.push_back("headers " + std::to_string(status) + " " + headers.GetOr("X-Kind", "-"));
    return true;
  };
  req.on_body = [&](std::string_view chunk) {
    events.push_back("body " + std::string(chunk));
    return true;
  };
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], "headers 201 final");  // once, for the 201 only, not for the 100
  EXPECT_EQ(events[1], "body created body");
}

TEST(HttpClientTest, OnHeadersRunsForABodylessResponseAndCanStopIt) {
  RawServer server([](const SeenRequest&, int) { return RawServer::Response(204, ""); });
  HttpClient client;
  ClientRequest req;
  req.url = server.url("/empty");
  int calls = 0;
  req.on_headers = [&](int status, const Headers&) {
    ++calls;
    EXPECT_EQ(status, 204);
    return true;
  };
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(calls, 1);

  req.on_headers = [](int, const Headers&) { return false; };
  auto stopped = client.Do(req);
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), Code::kCanceled) << stopped.status().ToString();
}

TEST(HttpClientTest, OnConnectedTellsARefusedConnectionFromABrokenOne) {
  HttpClient client;
  ClientRequest refused;
  refused.method = "POST";
  refused.url = "http://127.0.0.1:" + std::to_string(testing::FreePort()) + "/x";
  bool refused_connected = false;
  refused.on_connected = [&] { refused_connected = true; };
  auto a = client.Do(refused);
  ASSERT_FALSE(a.ok());
  EXPECT_FALSE(refused_connected);

  // This server accepts, reads the request and closes without answering.
  RawServer hangs_up([](const SeenRequest&, int) { return std::string(); });
  ClientRequest broken = refused;
  broken.url = hangs_up.url("/x");
  bool broken_connected = false;
  broken.on_connected = [&] { broken_connected = true; };
  auto b = client.Do(broken);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Code::kUnavailable) << b.status().ToString();
  EXPECT_TRUE(broken_connected);
}

TEST(HttpClientTest, GetWithABodyIsStillAGet) {
  RawServer server([](const SeenRequest& r, int) { return RawServer::Response(200, r.method); });
  HttpClient client;
  ClientRequest req;
  req.url = server.url("/search");
  req.body = "{\"q\":1}";
  auto res = client.Do(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->body, "GET");
  ASSERT_EQ(server.seen().size(), 1u);
  EXPECT_EQ(server.seen()[0].body, "{\"q\":1}");
}

// How many distinct connections five requests from five successive threads arrive on.
size_t ConnectionsForFiveThreads(HttpClient::ConnectionReuse reuse) {
  std::mutex mu;
  std::set<std::string> peers;
  auto server = HttpServer::Start({.listen = "127.0.0.1:0"},
                                  [&](const HttpRequest& r, BodyReader&, ResponseWriter& w) {
                                    {
                                      std::lock_guard lock(mu);
                                      peers.insert(r.remote_address);
                                    }
                                    (void)w.Send(200, {}, "ok");
                                  });
  EXPECT_TRUE(server.ok());
  HttpClient client(reuse);
  for (int i = 0; i < 5; ++i) {
    std::thread([&] {
      ClientRequest req;
      req.url = "http://" + (*server)->address() + "/";
      auto res = client.Do(req);
      EXPECT_TRUE(res.ok() && res->status == 200);
    }).join();
  }
  std::lock_guard lock(mu);
  return peers.size();
}

TEST(HttpClientTest, SharedReuseKeepsConnectionsAcrossThreads) {
  EXPECT_EQ(ConnectionsForFiveThreads(HttpClient::ConnectionReuse::kShared), 1u);
  // Per thread, a thread that ends takes its connection with it.
  EXPECT_EQ(ConnectionsForFiveThreads(HttpClient::ConnectionReuse::kPerThread), 5u);
}

TEST(HttpClientTest, RejectsTwoBodySources) {
  HttpClient client;
  ClientRequest req;
  req.method = "PUT";
  req.url = "http://127.0.0.1:1/x";
  req.body = "a";
  req.body_file = "/etc/hostname";
  auto res = client.Do(req);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace slipway::net
