// Route propagation: gateways record each routing-table load in gateway_loads, and ctrl's
// PartitionStore::WaitForGateways tells when a route change is served by every live gateway —
// what lets ctrl call a deployment READY only once its URLs answer from it.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>
#include <vector>

#include "ctrl/partition_store.h"
#include "gateway/gateway_server.h"
#include "integration/gateway/gateway_test_support.h"
#include "support/postgres.h"
#include "support/test_support.h"

namespace slipway::gateway {
namespace {

using namespace std::chrono_literals;
using slipway::testing::TempDir;
using slipway::testing::TestDriver;
using testing::Fetch;
using testing::Partition;
using testing::Upstream;
using Clock = std::chrono::steady_clock;

class RoutePropagationTest : public ::testing::TestWithParam<TestDriver> {
 protected:
  void SetUp() override {
    url_ = slipway::testing::FreshDatabaseUrl(GetParam(), dir_.path());
    partition_ = std::make_unique<Partition>(url_);
    store_ = std::make_unique<ctrl::PartitionStore>(partition_->db());
  }

  std::unique_ptr<GatewayServer> StartGateway(std::chrono::milliseconds refresh) {
    GatewayOptions options;
    options.listen = "127.0.0.1:0";
    options.partition_database = url_;
    options.refresh_interval = refresh;
    auto started = GatewayServer::Start(options);
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    return started.ok() ? std::move(started).value() : nullptr;
  }

  int64_t LoadRecords() {
    auto rows = partition_->db().Query("SELECT gateway_id FROM gateway_loads");
    return rows.ok() ? static_cast<int64_t>(rows->size()) : -1;
  }

  TempDir dir_;
  std::string url_;
  std::unique_ptr<Partition> partition_;
  std::unique_ptr<ctrl::PartitionStore> store_;
};

TEST_P(RoutePropagationTest, WaitEndsOnlyOnceEveryGatewayServesTheNewRoute) {
  Upstream app("app");
  partition_->Instance("dep_a", "i1", app.address());
  // Slow reloads make the window between commit and serve wide enough to observe.
  auto slow = StartGateway(800ms);
  auto fast = StartGateway(100ms);
  ASSERT_TRUE(slow && fast);
  EXPECT_EQ(LoadRecords(), 2);

  partition_->Route("fresh.localhost", "dep_a");
  const int64_t routed_at = store_->NowMs();
  auto started = Clock::now();
  auto behind = store_->WaitForGateways(routed_at, 5s);
  ASSERT_TRUE(behind.ok()) << behind.status().ToString();
  EXPECT_TRUE(behind->empty());
  // Both gateways serve the route the moment the wait ends: no 404 window for the user.
  EXPECT_EQ(Fetch(slow->port(), "fresh.localhost").body, "app");
  EXPECT_EQ(Fetch(fast->port(), "fresh.localhost").body, "app");
  EXPECT_LT(Clock::now() - started, 3s);
}

TEST_P(RoutePropagationTest, AGatewayThatLagsIsNamedAndAStoppedOneIsForgotten) {
  // Running gateways hear the wait's own notice and load at once; one that is alive but cannot
  // load (stuck on its database, say) is known to ctrl only by its last load record.
  auto running = StartGateway(10s);
  ASSERT_TRUE(running);
  auto stuck = partition_->db().Exec(
      "INSERT INTO gateway_loads (gateway_id, loaded_at) VALUES ('gw_stuck', $1)",
      {store_->NowMs() - 5});
  ASSERT_TRUE(stuck.ok()) << stuck.status().ToString();
  std::this_thread::sleep_for(20ms);
  const int64_t routed_at = store_->NowMs();
  auto behind = store_->WaitForGateways(routed_at, 300ms);
  ASSERT_TRUE(behind.ok()) << behind.status().ToString();
  EXPECT_EQ(*behind, std::vector<std::string>{"gw_stuck"});
  ASSERT_TRUE(
      partition_->db().Exec("DELETE FROM gateway_loads WHERE gateway_id = 'gw_stuck'").ok());

  running->Shutdown();
  EXPECT_EQ(LoadRecords(), 0) << "a stopped gateway must not hold ctrl's route step back";
  behind = store_->WaitForGateways(store_->NowMs(), 300ms);
  ASSERT_TRUE(behind.ok());
  EXPECT_TRUE(behind->empty());
}

TEST_P(RoutePropagationTest, ARouteChangeIsServedBeforeTheRouteStepReturnsWithoutAReload) {
  // A gateway that would not reload by itself for ten minutes: only the change notice can bring
  // the new route in time. With PostgreSQL the gateway is its own process (`slipway run
  // gateway`), reached through LISTEN/NOTIFY; SQLite's notices stay within one process, so
  // there it runs in this one, as in `slipway dev`.
  Upstream app("pushed");
  partition_->Instance("dep_pushed", "i1", app.address());
  std::unique_ptr<slipway::testing::Process> process;
  std::unique_ptr<GatewayServer> in_process;
  int port = 0;
  const auto log = dir_.path() / "gateway.log";
  if (GetParam() == TestDriver::kPostgres) {
    port = slipway::testing::FreePort();
    process = std::make_unique<slipway::testing::Process>(
        std::vector<std::string>{slipway::testing::SlipwayBinary(), "run", "gateway", "--admin-listen", "127.0.0.1:0", "--listen",
                                 "127.0.0.1:" + std::to_string(port), "--partition-database", url_,
                                 "--refresh-interval", "10m"},
        std::map<std::string, std::string>{}, log.string());
    ASSERT_TRUE(slipway::testing::WaitForPort(port)) << slipway::testing::ReadFile(log);
  } else {
    in_process = StartGateway(10min);
    ASSERT_TRUE(in_process);
    port = in_process->port();
  }
  // Its first load is recorded once it listens for changes.
  const auto loaded_by = Clock::now() + 20s;
  while (LoadRecords() < 1 && Clock::now() < loaded_by) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(LoadRecords(), 1) << slipway::testing::ReadFile(log);
  EXPECT_EQ(Fetch(port, "pushed.localhost").status, 404);

  // The route step: switch the host (announced), then wait for every live gateway to serve it.
  ASSERT_TRUE(store_->RouteHosts("dep_pushed", {"pushed.localhost"}).ok());
  const int64_t routed_at = store_->NowMs();
  auto behind = store_->WaitForGateways(routed_at, 30s);
  ASSERT_TRUE(behind.ok()) << behind.status().ToString();
  EXPECT_TRUE(behind->empty()) << "the gateway never loaded the change: no notice reached it\n"
                               << slipway::testing::ReadFile(log);
  EXPECT_EQ(Fetch(port, "pushed.localhost").body, "pushed");
}

INSTANTIATE_TEST_SUITE_P(Drivers, RoutePropagationTest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) {
                           return std::string(slipway::testing::TestDriverName(info.param));
                         });

}  // namespace
}  // namespace slipway::gateway
