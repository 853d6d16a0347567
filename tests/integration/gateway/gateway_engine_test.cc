// The gateway's event-driven engine at its edges: a client that reads slowly slows the
// instance down instead of making the gateway buffer; 10,000 idle keep-alive connections are
// held and then closed by the idle timeout; a slowloris client is cut off; a shutdown lets the
// request in flight finish; and request heads that two parsers could read two ways (request
// smuggling) are answered 400 and never reach an instance.
#include <signal.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <condition_variable>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "gateway/gateway_server.h"
#include "integration/gateway/gateway_test_support.h"
#include "support/test_support.h"

namespace slipway::gateway {
namespace {

using namespace std::chrono_literals;
using slipway::testing::FreePort;
using slipway::testing::Process;
using slipway::testing::ReadFile;
using slipway::testing::SlipwayBinary;
using slipway::testing::TempDir;
using slipway::testing::WaitForPort;
using testing::Partition;
using testing::RawClient;
using testing::Upstream;

class GatewayEngineTest : public ::testing::Test {
 protected:
  void StartGateway(GatewayOptions options = {}) {
    options.listen = "127.0.0.1:0";
    options.partition_database = db_path_;
    auto started = GatewayServer::Start(options);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    gateway_ = std::move(started).value();
  }

  uint16_t port() const { return gateway_->port(); }

  testing::RoutedApp app_{"app.localhost", "dep", "app"};
  TempDir& dir_ = app_.dir;
  const std::string& db_path_ = app_.db_path;
  std::unique_ptr<Partition>& partition_ = app_.partition;
  Upstream& upstream_ = app_.upstream;
  std::unique_ptr<GatewayServer> gateway_;
};

// The status line of a raw exchange: sends request, returns the first line of the answer.
std::string StatusLineFor(uint16_t port, const std::string& request) {
  RawClient client(port);
  if (!client.Send(request)) return "(send failed)";
  std::string line;
  if (!client.ReadLine(&line)) return "(no answer)";
  return line;
}

TEST_F(GatewayEngineTest, ASlowReaderSlowsTheInstanceDownInsteadOfBeingBuffered) {
  StartGateway();
  constexpr uint64_t kSize = 256ull << 20;
  RawClient client(port());
  int small = 64 * 1024;
  ASSERT_EQ(::setsockopt(client.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  ASSERT_TRUE(client.Send("GET /download?bytes=" + std::to_string(kSize) +
                          " HTTP/1.1\r\nHost: app.localhost\r\n\r\n"));
  std::string head = client.ReadHead();
  ASSERT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  std::string got;
  ASSERT_TRUE(client.ReadExactly(1 << 20, &got));
  // The client stops reading. The instance may fill the socket buffers between it, the gateway
  // and the client, and the gateway's one buffer, and then it must stop too.
  uint64_t produced = upstream_.bytes_sent();
  for (int stable = 0; stable < 5;) {
    std::this_thread::sleep_for(200ms);
    uint64_t now = upstream_.bytes_sent();
    stable = now == produced ? stable + 1 : 0;
    produced = now;
  }
  std::cout << "the instance stopped after " << (produced >> 10) << " KiB of " << (kSize >> 10)
            << " KiB while the client read 1024 KiB\n";
  EXPECT_LT(produced, kSize / 8) << "the gateway kept reading from the instance";
  // Reading again resumes the stream to the end.
  uint64_t total = (1 << 20);
  std::string chunk;
  while (total < kSize) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kSize - total, 1 << 20));
    ASSERT_TRUE(client.ReadExactly(n, &chunk)) << "after " << total;
    total += n;
  }
  // The instance counts a write after it returns, which can be after the client has read it.
  for (auto deadline = std::chrono::steady_clock::now() + 5s;
       upstream_.bytes_sent() < kSize && std::chrono::steady_clock::now() < deadline;)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(upstream_.bytes_sent(), kSize);
}

TEST_F(GatewayEngineTest, TenThousandIdleKeepAliveConnectionsAreHeldThenClosedByTheIdleTimeout) {
  constexpr int kConnections = 10'000;
  // The test holds one descriptor per connection, the gateway (a child process) another.
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  limit.rlim_cur = limit.rlim_max;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);
  ASSERT_GE(limit.rlim_cur, static_cast<rlim_t>(kConnections + 1000))
      << "raise the hard limit of open files (ulimit -Hn) to run this test";
  int gw_port = FreePort();
  std::string log = (dir_.path() / "gateway.log").string();
  Process gateway(testing::GatewayCommand(gw_port, db_path_,
                                          {"--max-connections", "20000", "--client-idle-timeout", "3s"}),
                  {}, log);
  ASSERT_TRUE(WaitForPort(gw_port)) << ReadFile(log);

  std::vector<std::unique_ptr<slipway::testing::LoopbackSocket>> clients;
  clients.reserve(kConnections);
  const std::string request = "GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n";
  for (int i = 0; i < kConnections; ++i) {
    auto c = std::make_unique<slipway::testing::LoopbackSocket>(gw_port);
    ASSERT_TRUE(c->connected()) << "connection " << i;
    ASSERT_TRUE(c->Send(request)) << "connection " << i;
    clients.push_back(std::move(c));
    // Read the answers in batches: each connection is served, then stays open and idle.
    if (clients.size() % 500 == 0 || i + 1 == kConnections) {
      for (size_t j = clients.size() - (clients.size() % 500 == 0 ? 500 : clients.size() % 500);
           j < clients.size(); ++j) {
        std::string head = clients[j]->ReadHead();
        ASSERT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << "connection " << j << ": " << head;
        std::string body;
        ASSERT_TRUE(clients[j]->ReadExactly(3, &body));
        ASSERT_EQ(body, "app");
      }
    }
  }
  std::ifstream status("/proc/" + std::to_string(gateway.pid()) + "/status");
  long rss_kib = -1;
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) rss_kib = std::stol(line.substr(6));
  }
  std::cout << kConnections << " idle keep-alive connections: gateway RSS " << rss_kib
            << " KiB\n";
  EXPECT_GT(rss_kib, 0);
  EXPECT_LT(rss_kib, 100 * 1024) << "idle connections must not hold buffers";
  // Nobody sends anything more: the gateway closes every one of them.
  int closed = 0;
  for (auto& c : clients) closed += c->ClosedWithin(30s);
  EXPECT_EQ(closed, kConnections);
  gateway.Signal(SIGTERM);
  EXPECT_EQ(gateway.Wait(15s), 0) << ReadFile(log);
}

TEST_F(GatewayEngineTest, ASlowlorisClientIsCutOffWhileOthersAreServed) {
  GatewayOptions options;
  options.header_timeout = 600ms;
  StartGateway(options);
  RawClient slow(port());
  ASSERT_TRUE(slow.Send("GET / HTTP/1.1\r\nHost: app.localhost\r\n"));
  // One header byte at a time, each well inside any per-read timeout, the head never ending.
  std::string answer;
  bool cut_off = false;
  for (int i = 0; i < 200 && !cut_off; ++i) {
    if (!slow.Send(i % 2 ? "a" : "X")) {
      cut_off = true;  // reset before any answer could be read
      break;
    }
    pollfd p{slow.fd(), POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      cut_off = true;
      if (slow.ReadLine(&answer)) {
        // The rest of the answer, then the end of the connection.
        for (int b = 0; b < 4096 && !slow.ClosedWithin(5s); ++b) {
        }
      }
    }
    if (i == 2) {
      EXPECT_EQ(testing::Fetch(port(), "app.localhost").body, "app");
    }
  }
  EXPECT_TRUE(cut_off) << "the gateway waited for a head that trickled in for 10 s";
  EXPECT_EQ(answer, "HTTP/1.1 408 Request Timeout");
  EXPECT_EQ(upstream_.requests(), 1) << "only the other client's request reached the instance";
}

TEST_F(GatewayEngineTest, ShutdownLetsTheRequestInFlightFinishAndClosesIdleConnections) {
  // An instance that answers only when the test lets it.
  std::mutex mu;
  std::condition_variable cv;
  bool arrived = false, release = false;
  net::HttpServer::Options upstream_options;
  auto slow = net::HttpServer::Start(
      upstream_options, [&](const net::HttpRequest&, net::BodyReader&, net::ResponseWriter& w) {
        std::unique_lock lock(mu);
        arrived = true;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
        (void)w.Send(200, {}, "finished");
      });
  ASSERT_TRUE(slow.ok()) << slow.status().ToString();
  partition_->Route("slow.localhost", "dep_slow");
  partition_->Instance("dep_slow", "i1", (*slow)->address());
  StartGateway();

  RawClient idle(port());
  ASSERT_TRUE(idle.Send("GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n"));
  ASSERT_EQ(idle.ReadHead().rfind("HTTP/1.1 200", 0), 0u);
  std::string body;
  ASSERT_TRUE(idle.ReadExactly(3, &body));

  RawClient busy(port());
  ASSERT_TRUE(busy.Send("GET /wait HTTP/1.1\r\nHost: slow.localhost\r\n\r\n"));
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return arrived; }));
  }
  std::thread shutdown([&] { gateway_->Shutdown(10s); });
  EXPECT_TRUE(idle.ClosedWithin(5s)) << "an idle connection stays open during shutdown";
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  std::string head = busy.ReadHead();
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  EXPECT_NE(head.find("Connection: close"), std::string::npos) << head;
  ASSERT_TRUE(busy.ReadExactly(8, &body));
  EXPECT_EQ(body, "finished");
  EXPECT_TRUE(busy.ClosedWithin(5s));
  shutdown.join();
  EXPECT_EQ(testing::Fetch(port(), "app.localhost").status, 0) << "still accepting after shutdown";
}

TEST_F(GatewayEngineTest, AmbiguousRequestHeadsAre400AndNeverForwarded) {
  StartGateway();
  const std::string host = "Host: app.localhost\r\n";
  struct Case {
    std::string name;
    std::string request;
  };
  const std::vector<Case> cases = {
      {"Content-Length with Transfer-Encoding",
       "POST /hash HTTP/1.1\r\n" + host +
           "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" +
           host + "\r\n"},
      {"two equal Content-Lengths",
       "POST /hash HTTP/1.1\r\n" + host + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
      {"two different Content-Lengths",
       "POST /hash HTTP/1.1\r\n" + host + "Content-Length: 3\r\nContent-Length: 30\r\n\r\nabc"},
      {"a Content-Length list", "POST /hash HTTP/1.1\r\n" + host + "Content-Length: 3, 3\r\n\r\nabc"},
      {"a signed Content-Length", "POST /hash HTTP/1.1\r\n" + host + "Content-Length: +3\r\n\r\nabc"},
      {"a Transfer-Encoding other than chunked",
       "POST /hash HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
      {"Transfer-Encoding twice",
       "POST /hash HTTP/1.1\r\n" + host +
           "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"obsolete line folding", "GET / HTTP/1.1\r\n" + host + "X-Folded: a\r\n  b\r\n\r\n"},
      {"white space before the colon", "GET / HTTP/1.1\r\nHost : app.localhost\r\n\r\n"},
      {"a bare LF", "GET / HTTP/1.1\n" + host + "\r\n"},
      {"two Host fields", "GET / HTTP/1.1\r\n" + host + "Host: other.localhost\r\n\r\n"},
      {"an oversized Host", "GET / HTTP/1.1\r\nHost: " + std::string(300, 'a') + ".localhost\r\n\r\n"},
      {"a Host with a space", "GET / HTTP/1.1\r\nHost: app localhost\r\n\r\n"},
      {"no Host", "GET / HTTP/1.1\r\n\r\n"},
      {"an absolute-form target", "GET http://app.localhost/ HTTP/1.1\r\n" + host + "\r\n"},
      {"an asterisk target", "OPTIONS * HTTP/1.1\r\n" + host + "\r\n"},
      {"a malformed request line", "GET  / HTTP/1.1\r\n" + host + "\r\n"},
      {"a control character in a value", "GET / HTTP/1.1\r\n" + host + "X-A: a\x01z\r\n\r\n"},
  };
  for (const auto& c : cases) {
    RawClient client(port());
    ASSERT_TRUE(client.Send(c.request)) << c.name;
    std::string head = client.ReadHead();
    EXPECT_EQ(head.rfind("HTTP/1.1 400 ", 0), 0u) << c.name << ": " << head;
    // Framing the gateway cannot trust ends the connection: nothing after it is read as a
    // request.
    if (head.find("Connection: close") != std::string::npos) {
      std::string body;
      size_t at = head.find("Content-Length: ");
      ASSERT_NE(at, std::string::npos) << head;
      ASSERT_TRUE(client.ReadExactly(std::stoul(head.substr(at + 16)), &body)) << c.name;
      EXPECT_TRUE(client.ClosedWithin(5s)) << c.name;
    }
  }
  EXPECT_EQ(upstream_.seen().size(), 0u) << upstream_.seen().front().target;
  // A well-formed request on the same gateway still goes through.
  EXPECT_EQ(testing::Fetch(port(), "app.localhost").body, "app");
}

TEST_F(GatewayEngineTest, HeadAndBodyLimitsAreAnsweredAndTheConnectionClosed) {
  GatewayOptions options;
  options.max_header_bytes = 4096;
  options.max_body_bytes = 1000;
  StartGateway(options);
  EXPECT_EQ(StatusLineFor(port(), "GET / HTTP/1.1\r\nHost: app.localhost\r\nX-Big: " +
                                      std::string(8000, 'b') + "\r\n\r\n"),
            "HTTP/1.1 431 Request Header Fields Too Large");
  EXPECT_EQ(StatusLineFor(port(), "POST /hash HTTP/1.1\r\nHost: app.localhost\r\n"
                                  "Content-Length: 1001\r\n\r\n"),
            "HTTP/1.1 413 Payload Too Large");
  EXPECT_EQ(upstream_.requests(), 0);
  // Pipelined requests on one connection are each answered, in order.
  RawClient client(port());
  ASSERT_TRUE(client.Send("GET /a HTTP/1.1\r\nHost: app.localhost\r\n\r\n"
                          "GET /b HTTP/1.1\r\nHost: nobody.localhost\r\n\r\n"
                          "GET /c HTTP/1.1\r\nHost: app.localhost\r\nConnection: close\r\n\r\n"));
  std::string body;
  EXPECT_EQ(client.ReadHead().rfind("HTTP/1.1 200", 0), 0u);
  ASSERT_TRUE(client.ReadExactly(3, &body));
  std::string second = client.ReadHead();
  EXPECT_EQ(second.rfind("HTTP/1.1 404", 0), 0u) << second;
  size_t at = second.find("Content-Length: ");
  ASSERT_NE(at, std::string::npos);
  ASSERT_TRUE(client.ReadExactly(std::stoul(second.substr(at + 16)), &body));
  std::string third = client.ReadHead();
  EXPECT_EQ(third.rfind("HTTP/1.1 200", 0), 0u) << third;
  EXPECT_NE(third.find("Connection: close"), std::string::npos) << third;
  ASSERT_TRUE(client.ReadExactly(3, &body));
  EXPECT_TRUE(client.ClosedWithin(5s));
  auto seen = upstream_.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].target, "/a");
  EXPECT_EQ(seen[1].target, "/c");
}

}  // namespace
}  // namespace slipway::gateway
