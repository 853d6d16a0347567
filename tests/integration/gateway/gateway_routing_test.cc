// The gateway in-process (GatewayServer::Start) in front of real upstream HTTP servers, routing
// from a real partition database written the way ctrl writes it; every test runs on SQLite and
// on PostgreSQL.
#include <gtest/gtest.h>

#include <iostream>

#include <atomic>
#include <chrono>
#include <thread>

#include "gateway/gateway_server.h"
#include "integration/gateway/gateway_test_support.h"
#include "support/postgres.h"
#include "support/prometheus.h"
#include "support/test_support.h"

namespace slipway::gateway {
namespace {

using namespace std::chrono_literals;
using slipway::testing::FreePort;
using slipway::testing::TempDir;
using slipway::testing::TestDriver;
using testing::Fetch;
using testing::GatewayResponse;
using testing::Partition;
using testing::Upstream;
using Clock = std::chrono::steady_clock;

class GatewayRoutingTest : public ::testing::TestWithParam<TestDriver> {
 protected:
  void SetUp() override {
    url_ = slipway::testing::FreshDatabaseUrl(GetParam(), dir_.path());
    partition_ = std::make_unique<Partition>(url_);
  }

  // Starts the gateway on its own connection to the partition database, as `run gateway` does.
  void StartGateway(std::chrono::milliseconds cooldown = 2s) {
    GatewayOptions options;
    options.listen = "127.0.0.1:0";
    options.partition_database = url_;
    options.refresh_interval = 250ms;
    options.refused_instance_cooldown = cooldown;
    options.admin_listen = "127.0.0.1:0";
    auto started = GatewayServer::Start(options);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    gateway_ = std::move(started).value();
  }

  uint16_t port() const { return gateway_->port(); }

  TempDir dir_;
  std::string url_;
  std::unique_ptr<Partition> partition_;
  std::unique_ptr<GatewayServer> gateway_;
};

TEST_P(GatewayRoutingTest, RoutesEachHostToItsDeployment) {
  Upstream a("app-a"), b("app-b");
  partition_->Route("alpha-production.localhost", "dep_a");
  partition_->Route("beta-production.localhost", "dep_b");
  partition_->Instance("dep_a", "i1", a.address());
  partition_->Instance("dep_b", "i1", b.address());
  StartGateway();
  EXPECT_EQ(gateway_->endpoint(), "http://127.0.0.1:" + std::to_string(port()));

  EXPECT_EQ(Fetch(port(), "alpha-production.localhost").body, "app-a");
  EXPECT_EQ(Fetch(port(), "beta-production.localhost").body, "app-b");
  // The port in Host is not part of the route, and host names compare case-insensitively.
  EXPECT_EQ(Fetch(port(), "alpha-production.localhost:8080").body, "app-a");
  EXPECT_EQ(Fetch(port(), "BETA-Production.LocalHost:" + std::to_string(port())).body, "app-b");
  EXPECT_EQ(Fetch(port(), "alpha-production.localhost.").body, "app-a");
  EXPECT_EQ(a.requests(), 3);
  EXPECT_EQ(b.requests(), 2);
}

TEST_P(GatewayRoutingTest, PassesTheRequestThroughWithForwardedFieldsAndNoHopByHopFields) {
  Upstream a("app-a");
  testing::RawUpstream hop_app(
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close, X-Upstream-Private\r\n"
      "X-Upstream-Private: secret\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\n"
      "X-App: kept\r\n\r\nhop");
  partition_->Route("alpha.localhost", "dep_a");
  partition_->Instance("dep_a", "i1", a.address());
  partition_->Route("hop.localhost", "dep_hop");
  partition_->Instance("dep_hop", "i1", hop_app.address());
  StartGateway();

  auto r = Fetch(port(), "Alpha.localhost:9999", "/some/path?q=1&r=%20x", "DELETE",
                 {{"X-Custom", "v"},
                  {"Connection", "X-Client-Private"},
                  {"X-Client-Private", "secret"},
                  {"Keep-Alive", "timeout=10"},
                  {"X-Forwarded-For", "203.0.113.9"}});
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  auto seen = a.seen();
  ASSERT_EQ(seen.size(), 1u);
  const auto& got = seen[0];
  EXPECT_EQ(got.method, "DELETE");
  EXPECT_EQ(got.target, "/some/path?q=1&r=%20x");
  EXPECT_EQ(got.headers.GetOr("Host", ""), "Alpha.localhost:9999");
  EXPECT_EQ(got.headers.GetOr("X-Custom", ""), "v");
  EXPECT_EQ(got.headers.GetOr("X-Forwarded-For", ""), "203.0.113.9, 127.0.0.1");
  EXPECT_EQ(got.headers.GetOr("X-Forwarded-Host", ""), "Alpha.localhost:9999");
  EXPECT_EQ(got.headers.GetOr("X-Forwarded-Proto", ""), "http");
  EXPECT_FALSE(got.headers.Has("X-Client-Private"));
  EXPECT_FALSE(got.headers.Has("Keep-Alive"));
  EXPECT_EQ(got.headers.GetOr("Via", ""), "1.1 slipway-gateway");

  auto hop = Fetch(port(), "hop.localhost", "/");
  ASSERT_EQ(hop.status, 200) << hop.error;
  EXPECT_EQ(hop.body, "hop");
  // The upstream's "Connection: close" is about its connection, not the client's.
  EXPECT_FALSE(hop.headers.Has("Connection"));
  EXPECT_EQ(hop.headers.GetOr("X-App", ""), "kept");
  EXPECT_FALSE(hop.headers.Has("X-Upstream-Private"));
  EXPECT_FALSE(hop.headers.Has("Keep-Alive"));
  EXPECT_FALSE(hop.headers.Has("Upgrade"));

  // HEAD: the upstream's length, no body.
  auto head = Fetch(port(), "alpha.localhost", "/download?bytes=1000", "HEAD");
  ASSERT_EQ(head.status, 200) << head.error;
  EXPECT_EQ(head.headers.GetOr("Content-Length", ""), "1000");
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(a.seen().back().method, "HEAD");

  // Paths are passed as they are, dot segments included.
  ASSERT_EQ(Fetch(port(), "alpha.localhost", "/a/../b").status, 200);
  EXPECT_EQ(a.seen().back().target, "/a/../b");
}

TEST_P(GatewayRoutingTest, RoundRobinsAcrossRunningInstancesOnly) {
  Upstream one("one"), two("two"), pending("pending"), failed("failed");
  partition_->Route("rr.localhost", "dep");
  partition_->Instance("dep", "i1", one.address());
  partition_->Instance("dep", "i2", two.address());
  partition_->Instance("dep", "i3", pending.address(), "PENDING");
  partition_->Instance("dep", "i4", failed.address(), "FAILED");
  StartGateway();

  std::vector<std::string> order;
  for (int i = 0; i < 10; ++i) order.push_back(Fetch(port(), "rr.localhost").body);
  EXPECT_EQ(one.requests(), 5);
  EXPECT_EQ(two.requests(), 5);
  EXPECT_EQ(pending.requests(), 0);
  EXPECT_EQ(failed.requests(), 0);
  for (size_t i = 1; i < order.size(); ++i) EXPECT_NE(order[i], order[i - 1]) << i;
}

TEST_P(GatewayRoutingTest, RetriesOnAnotherInstanceWhenOneRefusesConnections) {
  Upstream alive("alive");
  std::string refusing = "127.0.0.1:" + std::to_string(FreePort());  // nothing listens there
  partition_->Route("retry.localhost", "dep");
  partition_->Instance("dep", "i1", refusing);
  partition_->Instance("dep", "i2", alive.address());
  StartGateway(/*cooldown=*/0ms);  // every other request meets the refusing instance first

  for (int i = 0; i < 6; ++i) {
    // Requests 0, 2, 4 meet the refusing instance first; 2 is a POST: a refused connection
    // never delivered the request, so any method is retried.
    auto r = Fetch(port(), "retry.localhost", "/", (i / 2) % 2 ? "POST" : "GET");
    EXPECT_EQ(r.status, 200) << r.error << r.body;
    EXPECT_EQ(r.body, "alive");
  }
  EXPECT_EQ(alive.requests(), 6);
}

// The admin listener's /metrics, read by Prometheus's own parser: requests by routed host and
// status, retries after a refused connection, and each kind of upstream failure.
TEST_P(GatewayRoutingTest, CountsRequestsRetriesAndUpstreamErrorsPerRoutedHost) {
  Upstream alive("alive");
  std::string refusing = "127.0.0.1:" + std::to_string(FreePort());  // nothing listens there
  partition_->Route("retry.localhost", "dep_retry");
  partition_->Instance("dep_retry", "i1", refusing);
  partition_->Instance("dep_retry", "i2", alive.address());
  partition_->Route("dead.localhost", "dep_dead");
  partition_->Instance("dep_dead", "i1", refusing);
  partition_->Route("breaks.localhost", "dep_breaks");
  partition_->Instance("dep_breaks", "i1", alive.address());
  StartGateway(/*cooldown=*/0ms);

  for (int i = 0; i < 6; ++i) EXPECT_EQ(Fetch(port(), "retry.localhost").status, 200);
  EXPECT_EQ(Fetch(port(), "dead.localhost").status, 502);
  EXPECT_NE(Fetch(port(), "breaks.localhost", "/break").status, 200);
  EXPECT_EQ(Fetch(port(), "nobody.localhost").status, 404);
  EXPECT_EQ(Fetch(port(), "other.localhost").status, 404);

  ASSERT_FALSE(gateway_->admin_endpoint().empty());
  auto ready = slipway::testing::RunCommand("curl -s " + gateway_->admin_endpoint() + "/readyz");
  EXPECT_EQ(ready.output, "ready\n");
  // A request is counted once its response is sent: the last may show a moment later.
  slipway::testing::Scrape page;
  for (int i = 0; i < 50; ++i) {
    page = slipway::testing::ParseWithPrometheus(gateway_->admin_endpoint() + "/metrics");
    if (!page.ok || page.Value("slipway_gateway_request_duration_seconds_count") >= 10) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(page.ok) << page.error;
  EXPECT_EQ(page.Value("slipway_gateway_requests_total", {{"host", "retry.localhost"}, {"code", "200"}}), 6);
  // Requests 0, 2 and 4 met the refusing instance first and went on to the other.
  EXPECT_EQ(page.Value("slipway_gateway_upstream_retries_total", {{"host", "retry.localhost"}}), 3);
  EXPECT_EQ(page.Value("slipway_gateway_upstream_errors_total", {{"host", "retry.localhost"}}), 0);
  EXPECT_EQ(page.Value("slipway_gateway_upstream_errors_total",
                       {{"host", "dead.localhost"}, {"kind", "unreachable"}}),
            1);
  EXPECT_EQ(page.Value("slipway_gateway_upstream_errors_total",
                       {{"host", "breaks.localhost"}, {"kind", "broken"}}),
            1);
  // Unrouted hosts are one label value, whatever clients send.
  EXPECT_EQ(page.Value("slipway_gateway_requests_total", {{"host", ""}, {"code", "404"}}), 2);
  EXPECT_EQ(page.Value("slipway_gateway_requests_total", {{"host", "nobody.localhost"}}), 0);
  EXPECT_EQ(page.Value("slipway_gateway_request_duration_seconds_count"), 10);
}

TEST_P(GatewayRoutingTest, PassesOverAnInstanceThatRefusedUntilItsCooldownEnds) {
  auto flaky = std::make_unique<Upstream>("flaky");
  Upstream steady("steady");
  std::string flaky_address = flaky->address();
  partition_->Route("cool.localhost", "dep");
  partition_->Instance("dep", "i1", flaky_address);
  partition_->Instance("dep", "i2", steady.address());
  StartGateway(/*cooldown=*/3s);
  ASSERT_EQ(Fetch(port(), "cool.localhost").body, "flaky");

  flaky.reset();  // the instance dies; the database still says RUNNING
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Fetch(port(), "cool.localhost").body, "steady");
  // It comes back on the same address at once, but stays passed over until the cooldown ends.
  auto back = Clock::now();
  net::HttpServer::Options same_port;
  same_port.listen = flaky_address;
  std::atomic<int> revived_requests{0};
  auto revived = net::HttpServer::Start(
      same_port, [&](const net::HttpRequest&, net::BodyReader&, net::ResponseWriter& w) {
        ++revived_requests;
        (void)w.Send(200, {}, "revived");
      });
  ASSERT_TRUE(revived.ok()) << revived.status().ToString();
  while (Clock::now() - back < 1s) {
    EXPECT_EQ(Fetch(port(), "cool.localhost").body, "steady");
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(revived_requests.load(), 0);
  EXPECT_TRUE(testing::EventuallyServes(port(), "cool.localhost", "revived", 5s));
}

TEST_P(GatewayRoutingTest, UnknownHostIs404AndAHostWithoutReadyInstanceIs503) {
  partition_->Route("starting.localhost", "dep_starting");
  partition_->Instance("dep_starting", "i1", "127.0.0.1:1", "PENDING");
  StartGateway();

  auto unknown = Fetch(port(), "nobody.localhost");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.body.find("no deployment is routed to host nobody.localhost"),
            std::string::npos)
      << unknown.body;
  EXPECT_EQ(unknown.headers.GetOr("Content-Type", ""), "text/plain; charset=utf-8");

  auto starting = Fetch(port(), "starting.localhost", "/", "GET", {{"Accept", "text/html"}});
  EXPECT_EQ(starting.status, 503);
  EXPECT_NE(starting.body.find("deployment dep_starting has no ready instance"), std::string::npos)
      << starting.body;
  EXPECT_NE(starting.body.find("<html>"), std::string::npos) << starting.body;
  EXPECT_EQ(starting.headers.GetOr("Retry-After", ""), "1");

  // What a browser shows is escaped: a hostile Host header cannot inject markup.
  auto hostile = Fetch(port(), "<script>.localhost", "/", "GET", {{"Accept", "text/html"}});
  EXPECT_EQ(hostile.status, 404);
  EXPECT_EQ(hostile.body.find("<script>"), std::string::npos) << hostile.body;
}

TEST_P(GatewayRoutingTest, UnreachableOrBrokenInstanceIs502) {
  Upstream breaks("breaks");
  partition_->Route("down.localhost", "dep_down");
  partition_->Instance("dep_down", "i1", "127.0.0.1:" + std::to_string(FreePort()));
  partition_->Route("breaks.localhost", "dep_breaks");
  partition_->Instance("dep_breaks", "i1", breaks.address());
  StartGateway();

  auto down = Fetch(port(), "down.localhost");
  EXPECT_EQ(down.status, 502) << down.error;
  EXPECT_NE(down.body.find("deployment dep_down's instance at 127.0.0.1:"), std::string::npos)
      << down.body;

  // Broken in the middle of the body: the client must not take the half body for the whole.
  auto broken = Fetch(port(), "breaks.localhost", "/break");
  EXPECT_EQ(broken.status, 0) << "a truncated response must fail, got " << broken.status;
  EXPECT_FALSE(broken.error.empty());
  // And the gateway is still fine afterwards.
  EXPECT_EQ(Fetch(port(), "breaks.localhost").body, "breaks");
}

TEST_P(GatewayRoutingTest, AnInstanceAddressPointingBackAtTheGatewayIs508NotALoop) {
  StartGateway();
  partition_->Route("loop.localhost", "dep_loop");
  partition_->Instance("dep_loop", "i1", "127.0.0.1:" + std::to_string(port()));
  auto deadline = Clock::now() + 2s;
  GatewayResponse r;
  do {
    r = Fetch(port(), "loop.localhost");
  } while (r.status == 404 && Clock::now() < deadline);
  EXPECT_EQ(r.status, 508) << r.error << r.body;
  EXPECT_NE(r.body.find("already went through the gateway 5 times"), std::string::npos) << r.body;
}

TEST_P(GatewayRoutingTest, RelaysWebSocketUpgradesBothWays) {
  Upstream a("app-a");
  partition_->Route("ws.localhost", "dep_ws");
  partition_->Instance("dep_ws", "i1", a.address());
  StartGateway();

  testing::RawClient client(port());
  ASSERT_TRUE(
      client.Send("GET /ws HTTP/1.1\r\nHost: ws.localhost\r\nConnection: keep-alive, Upgrade\r\n"
                  "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n"));
  std::string head = client.ReadHead();
  ASSERT_EQ(head.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Upgrade: websocket"), std::string::npos) << head;
  EXPECT_NE(head.find("Connection: Upgrade"), std::string::npos) << head;
  EXPECT_NE(head.find("X-Instance: app-a"), std::string::npos) << head;

  std::string got;
  ASSERT_TRUE(client.Send("hello"));
  ASSERT_TRUE(client.ReadExactly(5, &got));
  EXPECT_EQ(got, "hello");
  std::this_thread::sleep_for(300ms);  // a quiet tunnel stays open
  std::string big(1 << 20, 'w');
  std::thread writer([&] { EXPECT_TRUE(client.Send(big)); });
  ASSERT_TRUE(client.ReadExactly(big.size(), &got));
  writer.join();
  EXPECT_EQ(got, big);

  auto seen = a.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].headers.GetOr("Upgrade", ""), "websocket");
  EXPECT_EQ(seen[0].headers.GetOr("Sec-WebSocket-Key", ""), "dGhlIHNhbXBsZSBub25jZQ==");
  EXPECT_EQ(seen[0].headers.GetOr("X-Forwarded-For", ""), "127.0.0.1");
  EXPECT_NE(net::ToLower(seen[0].headers.GetOr("Connection", "")).find("upgrade"),
            std::string::npos);

  // An instance that declines answers normally, with a length or chunked.
  net::Headers upgrade = {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}};
  auto refused = Fetch(port(), "ws.localhost", "/ws-refuse", "GET", upgrade);
  EXPECT_EQ(refused.status, 426) << refused.error;
  EXPECT_EQ(refused.body, "upgrade refused by app-a");
  auto chunked = Fetch(port(), "ws.localhost", "/ws-refuse-chunked", "GET", upgrade);
  EXPECT_EQ(chunked.status, 426) << chunked.error;
  EXPECT_EQ(chunked.body, "refused in chunks");
}

TEST_P(GatewayRoutingTest, ClosingEitherSideOfAWebSocketClosesTheOther) {
  Upstream a("app-a");
  partition_->Route("ws.localhost", "dep_ws");
  partition_->Instance("dep_ws", "i1", a.address());
  StartGateway();
  {
    testing::RawClient client(port());
    ASSERT_TRUE(
        client.Send("GET /ws HTTP/1.1\r\nHost: ws.localhost\r\nConnection: Upgrade\r\n"
                    "Upgrade: websocket\r\n\r\n"));
    ASSERT_EQ(client.ReadHead().rfind("HTTP/1.1 101", 0), 0u);
  }  // the client goes away; the gateway must let go of the tunnel (Shutdown would hang)
  std::this_thread::sleep_for(200ms);
  auto started = Clock::now();
  gateway_->Shutdown(std::chrono::milliseconds(5000));
  EXPECT_LT(Clock::now() - started, 2s);
}

TEST_P(GatewayRoutingTest, KeepsConnectionsToInstancesAlive) {
  Upstream a("app-a");
  partition_->Route("ka.localhost", "dep");
  partition_->Instance("dep", "i1", a.address());
  StartGateway();
  // One client connection (this thread's), twenty requests: one upstream connection.
  for (int i = 0; i < 20; ++i) ASSERT_EQ(Fetch(port(), "ka.localhost").status, 200);
  EXPECT_EQ(a.requests(), 20);
  EXPECT_EQ(a.connections().size(), 1u);

  // Four client connections at once, ten requests each: four more upstream connections.
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 10; ++i) ok += Fetch(port(), "ka.localhost").status == 200;
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok.load(), 40);
  size_t after_concurrent = a.connections().size();
  EXPECT_LE(after_concurrent, 5u);

  // A new client connection per request: the connections to the instance outlive them.
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(Fetch(port(), "ka.localhost", "/", "GET", {{"Connection", "close"}}).status, 200);
  }
  EXPECT_EQ(a.requests(), 70);
  EXPECT_EQ(a.connections().size(), after_concurrent);
}

TEST_P(GatewayRoutingTest, RouteChangesApplyWithoutARestart) {
  Upstream a("app-a"), b("app-b");
  partition_->Instance("dep_a", "i1", a.address());
  partition_->Instance("dep_b", "i1", b.address());
  StartGateway();
  EXPECT_EQ(Fetch(port(), "late.localhost").status, 404);

  auto added = Clock::now();
  partition_->Route("late.localhost", "dep_a");
  ASSERT_TRUE(testing::EventuallyServes(port(), "late.localhost", "app-a", 1s));
  EXPECT_LT(Clock::now() - added, 1s);

  // An instance that stops running stops getting traffic; a new one starts getting it.
  partition_->Instance("dep_a", "i1", a.address(), "TERMINATING");
  partition_->Instance("dep_a", "i2", b.address());
  ASSERT_TRUE(testing::EventuallyServes(port(), "late.localhost", "app-b", 1s));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Fetch(port(), "late.localhost").body, "app-b");

  ASSERT_TRUE(partition_->db()
                  .Exec("DELETE FROM gateway_routes WHERE hostname = $1", {"late.localhost"})
                  .ok());
  auto gone = Clock::now();
  while (Fetch(port(), "late.localhost").status != 404 && Clock::now() - gone < 2s) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(Fetch(port(), "late.localhost").status, 404);
}

TEST_P(GatewayRoutingTest, DatabaseErrorKeepsTheLastGoodRoutes) {
  Upstream a("app-a"), b("app-b");
  partition_->Route("steady.localhost", "dep_a");
  partition_->Instance("dep_a", "i1", a.address());
  partition_->Instance("dep_b", "i1", b.address());
  StartGateway();
  ASSERT_EQ(Fetch(port(), "steady.localhost").body, "app-a");

  // Every reload fails while the table is gone.
  ASSERT_TRUE(partition_->db().ExecScript("ALTER TABLE gateway_routes RENAME TO routes_away").ok());
  std::this_thread::sleep_for(800ms);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Fetch(port(), "steady.localhost").body, "app-a");

  ASSERT_TRUE(partition_->db().ExecScript("ALTER TABLE routes_away RENAME TO gateway_routes").ok());
  partition_->SwitchHosts({"steady.localhost"}, "dep_b");
  EXPECT_TRUE(testing::EventuallyServes(port(), "steady.localhost", "app-b", 2s));
}

// Several clients keep requesting while the host moves from deployment A to B in one
// transaction: no request fails, and B gets traffic within a second of the commit.
TEST_P(GatewayRoutingTest, RouteSwitchUnderLoadLosesNoRequest) {
  Upstream a1("A"), a2("A"), b1("B"), b2("B");
  const std::vector<std::string> hosts = {"shop-production.localhost", "shop-abc123.localhost"};
  for (const auto& h : hosts) partition_->Route(h, "dep_a");
  partition_->Instance("dep_a", "i1", a1.address());
  partition_->Instance("dep_a", "i2", a2.address());
  partition_->Instance("dep_b", "i1", b1.address());
  partition_->Instance("dep_b", "i2", b2.address());
  StartGateway();

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::atomic<int64_t> first_b_ns{0};
  std::mutex mu;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      const std::string& host = hosts[t % hosts.size()];
      while (!stop) {
        auto r = Fetch(port(), host);
        if (r.status == 200 && (r.body == "A" || r.body == "B")) {
          ++ok;
          if (r.body == "B") {
            int64_t now = Clock::now().time_since_epoch().count();
            int64_t unset = 0;
            first_b_ns.compare_exchange_strong(unset, now);
          }
        } else {
          ++failed;
          std::lock_guard lock(mu);
          failures.push_back(std::to_string(r.status) + " " + r.error + " " + r.body);
        }
      }
    });
  }
  std::this_thread::sleep_for(500ms);
  int before = ok.load();
  EXPECT_EQ(first_b_ns.load(), 0) << "B got traffic before the switch";
  // Measured from before the transaction starts: the switch is served within a second of
  // being asked for, whatever the commit itself takes on a busy machine.
  auto switching = Clock::now();
  partition_->SwitchHosts(hosts, "dep_b");
  auto committed = Clock::now();
  std::this_thread::sleep_for(1500ms);
  stop = true;
  for (auto& c : clients) c.join();

  EXPECT_EQ(failed.load(), 0) << (failures.empty() ? "" : failures.front());
  EXPECT_GT(before, 20) << "the clients hardly ran before the switch";
  ASSERT_NE(first_b_ns.load(), 0) << "no request reached B after the switch";
  auto reached_b = Clock::time_point(Clock::duration(first_b_ns.load()));
  EXPECT_LT(reached_b - switching, 1s);
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::cout << ok.load() << " requests, " << failed.load() << " failed; the switch took "
            << ms(committed - switching) << " ms to commit, B answered "
            << ms(reached_b - switching) << " ms after it started\n";
  EXPECT_GT(b1.requests() + b2.requests(), 0);
  // After the switch settles, everything goes to B.
  for (const auto& h : hosts) EXPECT_EQ(Fetch(port(), h).body, "B");
}

TEST_P(GatewayRoutingTest, ShutdownIsIdempotentAndRefusesNewConnections) {
  StartGateway();
  uint16_t p = port();
  EXPECT_EQ(Fetch(p, "x.localhost").status, 404);
  gateway_->Shutdown();
  gateway_->Shutdown();
  EXPECT_EQ(Fetch(p, "x.localhost").status, 0);
}

INSTANTIATE_TEST_SUITE_P(Drivers, GatewayRoutingTest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) {
                           return std::string(slipway::testing::TestDriverName(info.param));
                         });

TEST(GatewayStartTest, RefusesToStartWithoutAPartitionDatabase) {
  GatewayOptions no_database;
  no_database.listen = "127.0.0.1:0";
  auto none = GatewayServer::Start(no_database);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Code::kInvalidArgument);
  EXPECT_NE(none.status().message().find("--partition-database"), std::string::npos);

  GatewayOptions unreachable_database;
  unreachable_database.listen = "127.0.0.1:0";
  unreachable_database.partition_database =
      "postgresql://nobody@127.0.0.1:" + std::to_string(FreePort()) + "/x";
  auto unreachable = GatewayServer::Start(unreachable_database);
  ASSERT_FALSE(unreachable.ok());
  EXPECT_NE(unreachable.status().message().find("partition database"), std::string::npos)
      << unreachable.status().message();
}

TEST(GatewayStartTest, UsesAnAlreadyOpenPartitionDatabase) {
  TempDir dir;
  Partition partition((dir.path() / "partition.db").string());
  Upstream a("shared");
  partition.Route("shared.localhost", "dep");
  partition.Instance("dep", "i1", a.address());
  GatewayOptions options;
  options.listen = "127.0.0.1:0";
  options.partition = &partition.db();
  auto gateway = GatewayServer::Start(options);
  ASSERT_TRUE(gateway.ok()) << gateway.status().ToString();
  EXPECT_EQ(Fetch((*gateway)->port(), "shared.localhost").body, "shared");
}

}  // namespace
}  // namespace slipway::gateway
