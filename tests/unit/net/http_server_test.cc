// HttpServer against raw sockets (to see exactly what goes over the wire) and libcurl (a real
// client for the large streamed uploads).
#include "net/http_server.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "base/crypto.h"
#include "support/loopback_socket.h"

namespace slipway::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ----- raw socket client --------------------------------------------------------------------

using Socket = slipway::testing::LoopbackSocket;

struct Response {
  int status = 0;
  Headers headers;
  std::string body;
};

// Reads one response; a HEAD response has no body whatever its headers say.
std::optional<Response> ReadResponse(Socket& s, bool head_request = false) {
  Response r;
  std::string line;
  if (!s.ReadLine(&line) || line.rfind("HTTP/1.", 0) != 0 || line.size() < 12) return std::nullopt;
  r.status = std::stoi(line.substr(9, 3));
  for (;;) {
    if (!s.ReadLine(&line)) return std::nullopt;
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string::npos) return std::nullopt;
    size_t v = line.find_first_not_of(' ', colon + 1);
    r.headers.Add(line.substr(0, colon), v == std::string::npos ? "" : line.substr(v));
  }
  if (head_request || r.status == 204 || r.status == 304 || r.status / 100 == 1) return r;
  if (auto length = r.headers.Get("Content-Length")) {
    if (!s.ReadExactly(std::stoull(std::string(*length)), &r.body)) return std::nullopt;
  } else if (EqualsIgnoreCase(r.headers.GetOr("Transfer-Encoding", ""), "chunked")) {
    for (;;) {
      if (!s.ReadLine(&line)) return std::nullopt;
      size_t size = std::stoull(line, nullptr, 16);
      std::string chunk;
      if (!s.ReadExactly(size + 2, &chunk) || chunk.substr(size) != "\r\n") return std::nullopt;
      if (size == 0) break;
      r.body += chunk.substr(0, size);
    }
  } else {
    std::string byte;
    while (s.ReadExactly(1, &byte)) r.body += byte;  // delimited by the end of the connection
  }
  return r;
}

std::string Get(std::string_view target, std::string_view extra_headers = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra_headers) +
         "\r\n";
}

HttpServer::Options FastOptions() {
  HttpServer::Options o;
  o.listen = "127.0.0.1:0";
  o.read_timeout = 5s;
  o.write_timeout = 5s;
  o.idle_timeout = 5s;
  return o;
}

std::unique_ptr<HttpServer> StartServer(HttpServer::Options options, HttpHandler handler) {
  auto server = HttpServer::Start(std::move(options), std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(server).value() : nullptr;
}

size_t ThreadCount() {
  size_t n = 0;
  DIR* dir = ::opendir("/proc/self/task");
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n;
}

// ----- basics -------------------------------------------------------------------------------

TEST(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  std::mutex mu;
  std::vector<HttpRequest> seen;
  auto server =
      StartServer(FastOptions(), [&](const HttpRequest& req, BodyReader&, ResponseWriter& w) {
        {
          std::lock_guard lock(mu);
          seen.push_back(req);
        }
        (void)w.Send(200, {{"Content-Type", "text/plain"}}, "hello " + req.path);
      });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.connected());

  ASSERT_TRUE(s.Send(Get("/a", "X-Test: one\r\n")));
  auto first = ReadResponse(s);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, "hello /a");
  EXPECT_FALSE(first->headers.Has("Connection"));

  ASSERT_TRUE(s.Send(Get("/b%20c?x=1&y=2")));
  auto second = ReadResponse(s);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "hello /b%20c");

  std::lock_guard lock(mu);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].headers.GetOr("x-test", ""), "one");
  EXPECT_EQ(seen[1].target, "/b%20c?x=1&y=2");
  EXPECT_EQ(seen[1].query, "x=1&y=2");
  EXPECT_FALSE(seen[1].content_length.has_value());
  // Same client port both times: the second request really reused the connection.
  EXPECT_EQ(seen[0].remote_address, seen[1].remote_address);
  EXPECT_EQ(seen[0].remote_address.rfind("127.0.0.1:", 0), 0u);
}

TEST(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  auto server =
      StartServer(FastOptions(), [](const HttpRequest& req, BodyReader&, ResponseWriter& w) {
        (void)w.Send(200, {}, req.path);
      });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.Send(Get("/one") + Get("/two")));
  auto a = ReadResponse(s);
  auto b = ReadResponse(s);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->body, "/one");
  EXPECT_EQ(b->body, "/two");
}

TEST(HttpServerTest, ConnectionCloseIsHonoured) {
  auto server = StartServer(FastOptions(), [](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    (void)w.Send(200, {}, "bye");
  });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.Send(Get("/", "Connection: close\r\n")));
  auto r = ReadResponse(s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->headers.GetOr("Connection", ""), "close");
  EXPECT_TRUE(s.ClosedWithin(2s));
}

TEST(HttpServerTest, ListenAddressIsValidated) {
  auto bad = HttpServer::Start({.listen = "no-port-here"}, [](auto&, auto&, auto&) {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);

  auto local = HttpServer::Start({.listen = "localhost:0"},
                                 [](auto&, auto&, auto& w) { (void)w.Send(204, {}, ""); });
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  EXPECT_NE((*local)->port(), 0);
  EXPECT_EQ((*local)->address(), "127.0.0.1:" + std::to_string((*local)->port()));

  auto taken = HttpServer::Start({.listen = (*local)->address()}, [](auto&, auto&, auto&) {});
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.status().code(), Code::kUnavailable);
  EXPECT_NE(taken.status().message().find("already in use"), std::string::npos);
}

// ----- streamed request bodies --------------------------------------------------------------

// Deterministic bytes, produced on the fly, hashed as they are produced.
class Generator {
 public:
  explicit Generator(uint64_t total) : left_(total) {}
  size_t Fill(char* out, size_t n) {
    n = std::min<uint64_t>(n, left_);
    for (size_t i = 0; i < n; ++i) {
      state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
      out[i] = static_cast<char>(state_ >> 56);
    }
    hash_.Update(out, n);
    left_ -= n;
    return n;
  }
  std::string Hex() { return hash_.FinishHex(); }

 private:
  uint64_t left_;
  uint64_t state_ = 42;
  Sha256Stream hash_;
};

size_t CurlRead(char* buffer, size_t size, size_t nitems, void* user) {
  return static_cast<Generator*>(user)->Fill(buffer, size * nitems);
}

size_t CurlWrite(char* data, size_t size, size_t nmemb, void* user) {
  static_cast<std::string*>(user)->append(data, size * nmemb);
  return size * nmemb;
}

long PeakRssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

void ResetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5"; }

void UploadAndCheck(bool chunked) {
  constexpr uint64_t kSize = 64ull << 20;
  constexpr size_t kChunk = 64 * 1024;
  std::atomic<size_t> largest_read{0};
  std::atomic<size_t> reads{0};
  auto server =
      StartServer(FastOptions(), [&](const HttpRequest& req, BodyReader& body, ResponseWriter& w) {
        std::vector<char> buf(kChunk);  // the only place the body lives
        Sha256Stream hash;
        for (;;) {
          auto n = body.Read(buf.data(), buf.size());
          if (!n.ok()) {
            (void)w.Send(400, {}, n.status().ToString());
            return;
          }
          if (*n == 0) break;
          largest_read = std::max<size_t>(largest_read, *n);
          ++reads;
          hash.Update(buf.data(), *n);
        }
        (void)w.Send(200, {}, hash.FinishHex() + " " + std::to_string(body.bytes_read()));
      });
  ASSERT_TRUE(server);

  Generator gen(kSize);
  std::string response;
  CURL* curl = curl_easy_init();
  std::string url = "http://" + server->address() + "/upload";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, CurlRead);
  curl_easy_setopt(curl, CURLOPT_READDATA, &gen);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, CurlWrite);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  curl_slist* headers = nullptr;
  if (chunked) {
    headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
  } else {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(kSize));
  }
  headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

  ResetPeakRss();
  long rss_before = PeakRssKiB();
  CURLcode rc = curl_easy_perform(curl);
  long rss_peak = PeakRssKiB();
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);

  ASSERT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc);
  EXPECT_EQ(status, 200) << response;
  EXPECT_EQ(response, gen.Hex() + " " + std::to_string(kSize));
  EXPECT_LE(largest_read.load(), kChunk);
  EXPECT_GE(reads.load(), kSize / kChunk);
  // Neither side ever held the body: the process grew by far less than its 64 MiB.
  EXPECT_LT(rss_peak - rss_before, 16 * 1024)
      << "peak RSS grew by " << (rss_peak - rss_before) << " KiB";
}

TEST(HttpServerTest, StreamsA64MiBUploadWithContentLength) { UploadAndCheck(/*chunked=*/false); }

TEST(HttpServerTest, StreamsA64MiBChunkedUpload) { UploadAndCheck(/*chunked=*/true); }

TEST(HttpServerTest, ChunkedRequestOverTheBodyLimitFailsTheRead) {
  auto options = FastOptions();
  options.max_body_bytes = 1000;
  std::promise<Status> read_status;
  auto server =
      StartServer(options, [&](const HttpRequest& req, BodyReader& body, ResponseWriter& w) {
        auto all = body.ReadAll(1 << 20);
        read_status.set_value(all.status());
        (void)w.Send(all.ok() ? 200 : 413, {}, "");
      });
  ASSERT_TRUE(server);
  Socket s(server->port());
  std::string chunk(1500, 'x');
  ASSERT_TRUE(s.Send("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5dc\r\n" +
                     chunk + "\r\n0\r\n\r\n"));
  auto r = ReadResponse(s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(read_status.get_future().get().code(), Code::kResourceExhausted);
}

// ----- responses ----------------------------------------------------------------------------

TEST(HttpServerTest, ResponseWithoutLengthIsChunked) {
  auto server = StartServer(FastOptions(), [](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    if (!w.WriteHead(200, {{"Content-Type", "text/plain"}}, std::nullopt).ok()) return;
    for (int i = 0; i < 5; ++i) (void)w.Write("part" + std::to_string(i) + ";");
    (void)w.Finish();
  });
  ASSERT_TRUE(server);
  Socket s(server->port());
  for (int round = 0; round < 2; ++round) {  // the terminating chunk leaves the connection reusable
    ASSERT_TRUE(s.Send(Get("/")));
    auto r = ReadResponse(s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->headers.GetOr("Transfer-Encoding", ""), "chunked");
    EXPECT_FALSE(r->headers.Has("Content-Length"));
    EXPECT_EQ(r->body, "part0;part1;part2;part3;part4;");
  }
}

TEST(HttpServerTest, AbortedChunkedResponseIsNeverTerminated) {
  auto server = StartServer(FastOptions(), [](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    if (!w.WriteHead(200, {}, std::nullopt).ok()) return;
    (void)w.Write("half of it");
    w.Abort();  // what a proxy does when its upstream breaks mid-body
  });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.Send(Get("/")));
  std::string line;
  ASSERT_TRUE(s.ReadLine(&line));
  EXPECT_EQ(line, "HTTP/1.1 200 OK");
  // Headers, then one chunk, then the end of the connection: never the terminating "0" chunk.
  std::string all;
  while (s.ReadLine(&line)) all += line + "\n";
  EXPECT_NE(all.find("half of it"), std::string::npos) << all;
  EXPECT_EQ(all.find("\n0\n"), std::string::npos) << all;
}

TEST(HttpServerTest, AbortBeforeTheHeadClosesWithoutAResponse) {
  auto server = StartServer(FastOptions(), [](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    w.Abort();
    EXPECT_FALSE(w.WriteHead(200, {}, 0).ok());
  });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.Send(Get("/")));
  EXPECT_TRUE(s.ClosedWithin(2s));
}

TEST(HttpServerTest, UpgradeHandsTheConnectionOverAfter101) {
  auto server = StartServer(FastOptions(), [](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    auto conn = w.Upgrade({{"Upgrade", "echo"}, {"Connection", "Upgrade"}});
    if (!conn.ok()) return;
    char buf[256];
    for (;;) {  // echoes until the client closes, however long it stays silent
      auto n = (*conn)->Read(buf, sizeof buf);
      if (!n.ok() || *n == 0) return;
      if (!(*conn)->Write(std::string_view(buf, *n)).ok()) return;
    }
  });
  ASSERT_TRUE(server);
  Socket s(server->port());
  // Bytes right behind the request head belong to the new protocol already.
  ASSERT_TRUE(s.Send(Get("/", "Connection: Upgrade\r\nUpgrade: echo\r\n") + "early;"));
  std::string line;
  ASSERT_TRUE(s.ReadLine(&line));
  EXPECT_EQ(line, "HTTP/1.1 101 Switching Protocols");
  std::string head;
  while (s.ReadLine(&line) && !line.empty()) head += line + "\n";
  EXPECT_NE(head.find("Upgrade: echo"), std::string::npos) << head;
  std::string echoed;
  ASSERT_TRUE(s.ReadExactly(6, &echoed));
  EXPECT_EQ(echoed, "early;");
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(s.Send("GET / HTTP/1.1\r\n\r\n"));  // not parsed as HTTP any more
  ASSERT_TRUE(s.ReadExactly(18, &echoed));
  EXPECT_EQ(echoed, "GET / HTTP/1.1\r\n\r\n");
}

TEST(HttpServerTest, UpgradeIsRefusedOnceAResponseStarted) {
  std::promise<Status> result;
  auto server = StartServer(FastOptions(), [&](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    (void)w.WriteHead(200, {}, 0);
    result.set_value(w.Upgrade({}).status());
    (void)w.Finish();
  });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.Send(Get("/")));
  auto r = ReadResponse(s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(result.get_future().get().code(), Code::kFailedPrecondition);
}

TEST(HttpServerTest, HeadResponseHasHeadersButNoBody) {
  auto server =
      StartServer(FastOptions(), [](const HttpRequest& req, BodyReader&, ResponseWriter& w) {
        if (req.path == "/unknown-length") {
          (void)w.WriteHead(200, {}, std::nullopt);
          (void)w.Write("streamed");
          (void)w.Finish();
          return;
        }
        (void)w.Send(200, {{"ETag", "\"v1\""}}, "0123456789");
      });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.Send("HEAD /file HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto head = ReadResponse(s, /*head_request=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers.GetOr("Content-Length", ""), "10");
  EXPECT_EQ(head->headers.GetOr("ETag", ""), "\"v1\"");

  ASSERT_TRUE(s.Send("HEAD /unknown-length HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto head2 = ReadResponse(s, /*head_request=*/true);
  ASSERT_TRUE(head2);
  EXPECT_FALSE(head2->headers.Has("Transfer-Encoding"));

  // Had any body bytes followed the HEAD responses, they would be read here as the status line.
  ASSERT_TRUE(s.Send(Get("/file")));
  auto get = ReadResponse(s);
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, "0123456789");
}

TEST(HttpServerTest, HandlerThatWritesNothingGets500) {
  auto server =
      StartServer(FastOptions(), [](const HttpRequest& req, BodyReader&, ResponseWriter& w) {
        if (req.path == "/throw") throw std::runtime_error("handler bug");
        if (req.path == "/ok") (void)w.Send(200, {}, "fine");
      });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.Send(Get("/nothing")));
  auto r = ReadResponse(s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  ASSERT_TRUE(s.Send(Get("/ok")));  // a 500 for a silent handler does not cost the connection
  auto ok = ReadResponse(s);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);

  Socket t(server->port());
  ASSERT_TRUE(t.Send(Get("/throw")));
  auto thrown = ReadResponse(t);
  ASSERT_TRUE(thrown);
  EXPECT_EQ(thrown->status, 500);
  EXPECT_TRUE(t.ClosedWithin(2s));
}

TEST(HttpServerTest, ContentLengthMismatchesAreRefusedAndCloseTheConnection) {
  std::promise<std::pair<Status, Status>> results;
  auto server = StartServer(FastOptions(), [&](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    (void)w.WriteHead(200, {}, 4);
    Status too_long = w.Write("12345");
    Status short_finish = w.Finish();
    results.set_value({too_long, short_finish});
  });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.Send(Get("/")));
  auto [too_long, short_finish] = results.get_future().get();
  EXPECT_EQ(too_long.code(), Code::kInvalidArgument);
  EXPECT_FALSE(short_finish.ok());
  std::string head;
  ASSERT_TRUE(s.ReadLine(&head));
  EXPECT_EQ(head, "HTTP/1.1 200 OK");
  std::string line;
  while (s.ReadLine(&line) && !line.empty()) {
  }
  EXPECT_TRUE(s.ClosedWithin(2s));  // the client learns the body was cut short
}

// ----- refusals before the handler ----------------------------------------------------------

TEST(HttpServerTest, ContentLengthOverTheLimitIs413WithoutTheHandler) {
  auto options = FastOptions();
  options.max_body_bytes = 1024;
  std::atomic<int> calls{0};
  auto server = StartServer(options, [&](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    ++calls;
    (void)w.Send(200, {}, "");
  });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.Send("PUT /big HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n"));
  auto r = ReadResponse(s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->headers.GetOr("Connection", ""), "close");
  EXPECT_NE(r->body.find("1024"), std::string::npos);
  EXPECT_TRUE(s.ClosedWithin(2s));
  EXPECT_EQ(calls.load(), 0);

  Socket fits(server->port());
  ASSERT_TRUE(fits.Send("PUT /big HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n" +
                        std::string(1024, 'a')));
  auto ok = ReadResponse(fits);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(calls.load(), 1);
}

TEST(HttpServerTest, OversizedHeadersAre431) {
  auto options = FastOptions();
  options.max_header_bytes = 8 * 1024;
  std::atomic<int> calls{0};
  auto server = StartServer(options, [&](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    ++calls;
    (void)w.Send(200, {}, "");
  });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.Send(Get("/", "X-Big: " + std::string(16 * 1024, 'h') + "\r\n")));
  auto r = ReadResponse(s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(r->headers.GetOr("Connection", ""), "close");
  EXPECT_TRUE(s.ClosedWithin(2s));
  EXPECT_EQ(calls.load(), 0);
}

TEST(HttpServerTest, MalformedRequestIs400) {
  auto server = StartServer(FastOptions(), [](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    (void)w.Send(200, {}, "");
  });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.Send("this is not http\r\n\r\n"));
  auto r = ReadResponse(s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->headers.GetOr("Connection", ""), "close");
  EXPECT_TRUE(s.ClosedWithin(2s));
}

// RFC 9112 6.3: without chunked as its last coding, a request's body has no trustworthy length;
// serving it as bodiless would read the body as the next request (a smuggled one).
TEST(HttpServerTest, TransferEncodingThatDoesNotEndInChunkedIs400AndCloses) {
  std::atomic<int> served{0};
  auto server = StartServer(FastOptions(), [&](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    ++served;
    (void)w.Send(200, {}, "");
  });
  ASSERT_TRUE(server);
  for (std::string coding : {"chunked, gzip", "gzip", "xchunked"}) {
    Socket s(server->port());
    ASSERT_TRUE(s.Send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + coding +
                       "\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"));
    auto r = ReadResponse(s);
    ASSERT_TRUE(r) << coding;
    EXPECT_EQ(r->status, 400) << coding;
    EXPECT_NE(r->body.find("Transfer-Encoding"), std::string::npos) << r->body;
    EXPECT_TRUE(s.ClosedWithin(2s)) << coding;
  }
  EXPECT_EQ(served.load(), 0);
}

TEST(HttpServerTest, ConnectionsOverTheLimitGet503) {
  auto options = FastOptions();
  options.max_connections = 2;
  auto server = StartServer(options, [](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    (void)w.Send(200, {}, "");
  });
  ASSERT_TRUE(server);
  Socket a(server->port()), b(server->port());
  for (Socket* s : {&a, &b}) {  // a full round trip proves each connection was accepted
    ASSERT_TRUE(s->Send(Get("/")));
    ASSERT_TRUE(ReadResponse(*s));
  }
  Socket c(server->port());
  auto r = ReadResponse(c);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_TRUE(c.ClosedWithin(2s));
}

TEST(HttpServerTest, The503PastTheLimitNamesTheLimitAndTheSettingThatRaisesIt) {
  auto options = FastOptions();
  options.max_connections = 1;
  options.max_connections_setting = "--max-connections (TEST_MAX_CONNECTIONS)";
  auto server = StartServer(options, [](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    (void)w.Send(200, {}, "");
  });
  ASSERT_TRUE(server);
  Socket a(server->port());
  ASSERT_TRUE(a.Send(Get("/")));
  ASSERT_TRUE(ReadResponse(a));
  Socket b(server->port());
  auto r = ReadResponse(b);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body,
            "the server is at its limit of 1 connections at once; retry shortly, or have its "
            "operator raise --max-connections (TEST_MAX_CONNECTIONS).\n");
}

TEST(OpenFileLimitTest, ALimitBelowTheCapAndWhatTheServiceNeedsIsNamedWithTheSetting) {
  EXPECT_EQ(OpenFileLimitProblem(20000, 1024, "--max-connections (X)"), "");
  EXPECT_EQ(OpenFileLimitProblem(1024 + 128, 1024, "--max-connections (X)"), "");
  const std::string problem = OpenFileLimitProblem(1024, 1024, "--max-connections (X)");
  EXPECT_NE(problem.find("the open file limit (ulimit -n) is 1024, below the 1152 descriptors"),
            std::string::npos)
      << problem;
  EXPECT_NE(problem.find("past about 896 connections"), std::string::npos) << problem;
  EXPECT_NE(problem.find("or lower --max-connections (X)"), std::string::npos) << problem;
  // A limit smaller than what the service needs for itself is no negative count.
  EXPECT_NE(OpenFileLimitProblem(64, 10, "").find("past about 0 connections"), std::string::npos);
  EXPECT_NE(OpenFileLimitProblem(64, 10, "").find("lower the connection cap"), std::string::npos);
}

// ----- Expect: 100-continue ------------------------------------------------------------------

TEST(HttpServerTest, ContinueIsNotSentWhenTheHandlerRefusesUpFront) {
  auto server = StartServer(FastOptions(), [](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    (void)w.Send(401, {}, "who are you?");
  });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(
      s.Send("PUT /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto r = ReadResponse(s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);  // not 100
  EXPECT_EQ(r->headers.GetOr("Connection", ""), "close");
  EXPECT_TRUE(s.ClosedWithin(3s));  // the unsent body is never taken for the next request
}

TEST(HttpServerTest, ContinueIsSentOnTheFirstRead) {
  std::atomic<bool> reading{false};
  auto server =
      StartServer(FastOptions(), [&](const HttpRequest&, BodyReader& body, ResponseWriter& w) {
        std::this_thread::sleep_for(100ms);  // nothing may reach the client before Read
        reading = true;
        auto all = body.ReadAll(1024);
        (void)w.Send(all.ok() ? 200 : 500, {}, all.ok() ? *all : all.status().ToString());
      });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(
      s.Send("PUT /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  std::string interim;
  ASSERT_TRUE(s.ReadExactly(25, &interim));
  EXPECT_TRUE(reading.load());
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(s.Send("hello"));
  auto r = ReadResponse(s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");
  ASSERT_TRUE(s.Send(Get("/")));  // body fully read: the connection stays usable
  EXPECT_TRUE(ReadResponse(s));
}

TEST(HttpServerTest, UnreadBodyClosesTheConnectionAfterTheResponse) {
  auto server = StartServer(FastOptions(), [](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    (void)w.Send(200, {}, "ignored your body");
  });
  ASSERT_TRUE(server);
  Socket s(server->port());
  // The "body" is itself a request: if the server parsed it as one, a second response appears.
  std::string smuggled = Get("/smuggled");
  ASSERT_TRUE(s.Send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                     std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled));
  auto r = ReadResponse(s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->headers.GetOr("Connection", ""), "close");
  EXPECT_TRUE(s.ClosedWithin(3s));
}

// ----- timeouts -----------------------------------------------------------------------------

TEST(HttpServerTest, StalledRequestHeaderIsClosedAfterTheReadTimeout) {
  auto options = FastOptions();
  options.read_timeout = 200ms;
  auto server = StartServer(options, [](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    (void)w.Send(200, {}, "");
  });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.Send("GET / HTTP/1.1\r\nHost: t\r\n"));  // and then nothing
  auto start = Clock::now();
  EXPECT_TRUE(s.ClosedWithin(3s));
  auto took = Clock::now() - start;
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 2s);
}

TEST(HttpServerTest, StalledRequestBodyFailsTheReadAfterTheReadTimeout) {
  auto options = FastOptions();
  options.read_timeout = 200ms;
  std::promise<Status> read_status;
  auto server = StartServer(options, [&](const HttpRequest&, BodyReader& body, ResponseWriter& w) {
    auto all = body.ReadAll(1024);
    read_status.set_value(all.status());
    (void)w.Send(408, {}, "");
  });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.Send("PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"));
  auto future = read_status.get_future();
  ASSERT_EQ(future.wait_for(3s), std::future_status::ready);
  EXPECT_EQ(future.get().code(), Code::kDeadlineExceeded);
  auto r = ReadResponse(s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(s.ClosedWithin(3s));
}

TEST(HttpServerTest, IdleKeepAliveConnectionIsClosedAfterTheIdleTimeout) {
  auto options = FastOptions();
  options.idle_timeout = 200ms;
  auto server = StartServer(options, [](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    (void)w.Send(200, {}, "");
  });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.Send(Get("/")));
  ASSERT_TRUE(ReadResponse(s));
  auto start = Clock::now();
  EXPECT_TRUE(s.ClosedWithin(3s));
  EXPECT_GE(Clock::now() - start, 150ms);
}

// ----- shutdown and resources ---------------------------------------------------------------

TEST(HttpServerTest, ShutdownLetsTheInFlightRequestFinishAndRefusesNewConnections) {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, release = false;
  auto server =
      StartServer(FastOptions(), [&](const HttpRequest& req, BodyReader&, ResponseWriter& w) {
        if (req.path == "/slow") {
          std::unique_lock lock(mu);
          entered = true;
          cv.notify_all();
          cv.wait(lock, [&] { return release; });
        }
        (void)w.Send(200, {}, "done " + req.path);
      });
  ASSERT_TRUE(server);
  uint16_t port = server->port();

  Socket idle(port);  // a finished keep-alive connection: closed at once by Shutdown
  ASSERT_TRUE(idle.Send(Get("/fast")));
  ASSERT_TRUE(ReadResponse(idle));

  Socket busy(port);
  ASSERT_TRUE(busy.Send(Get("/slow")));
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return entered; }));
  }
  auto shutdown = std::async(std::launch::async, [&] { server->Shutdown(5s); });

  EXPECT_TRUE(idle.ClosedWithin(2s));
  bool refused = false;
  for (auto deadline = Clock::now() + 2s; Clock::now() < deadline && !refused;) {
    refused = !Socket(port).connected();
    if (!refused) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(refused);
  EXPECT_EQ(shutdown.wait_for(100ms), std::future_status::timeout);  // still waiting for /slow

  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  auto r = ReadResponse(busy);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "done /slow");
  EXPECT_EQ(r->headers.GetOr("Connection", ""), "close");
  ASSERT_EQ(shutdown.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(Socket(port).connected());
  server->Shutdown();  // a second call is harmless
}

TEST(HttpServerTest, ShutdownForceClosesRequestsThatOutliveTheGracePeriod) {
  std::promise<Status> read_status;
  auto server =
      StartServer(FastOptions(), [&](const HttpRequest&, BodyReader& body, ResponseWriter& w) {
        auto all = body.ReadAll(1024);  // the client never sends the rest
        read_status.set_value(all.status());
      });
  ASSERT_TRUE(server);
  Socket s(server->port());
  ASSERT_TRUE(s.Send("PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc"));
  std::this_thread::sleep_for(100ms);
  auto start = Clock::now();
  server->Shutdown(200ms);
  auto took = Clock::now() - start;
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 3s);  // far below the 5 s read timeout
  auto future = read_status.get_future();
  ASSERT_EQ(future.wait_for(0s), std::future_status::ready);
  EXPECT_FALSE(future.get().ok());
}

TEST(HttpServerTest, ThousandSequentialConnectionsLeaveNoThreadsBehind) {
  auto server = StartServer(FastOptions(), [](const HttpRequest&, BodyReader&, ResponseWriter& w) {
    (void)w.Send(200, {}, "x");
  });
  ASSERT_TRUE(server);
  size_t baseline = ThreadCount();
  for (int i = 0; i < 1000; ++i) {
    Socket s(server->port());
    ASSERT_TRUE(s.Send(i % 2 ? Get("/", "Connection: close\r\n") : Get("/")));
    auto r = ReadResponse(s);
    ASSERT_TRUE(r) << "request " << i;
    ASSERT_EQ(r->status, 200);
  }
  size_t now = ThreadCount();
  for (auto deadline = Clock::now() + 5s; now > baseline + 1 && Clock::now() < deadline;) {
    std::this_thread::sleep_for(20ms);
    now = ThreadCount();
  }
  EXPECT_LE(now, baseline + 1) << "baseline " << baseline;
}

}  // namespace
}  // namespace slipway::net
