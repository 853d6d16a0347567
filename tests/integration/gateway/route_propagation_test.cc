// Route propagation: gateways record each routing-table load in gateway_loads, and ctrl's
// PartitionStore::WaitForGateways tells when a route change is served by every live gateway —
// what lets ctrl call a deployment READY only once its URLs answer from it.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

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
  auto lagging = StartGateway(10s);  // loads once at start, then not for ten seconds
  ASSERT_TRUE(lagging);
  std::this_thread::sleep_for(20ms);
  const int64_t routed_at = store_->NowMs();
  auto behind = store_->WaitForGateways(routed_at, 300ms);
  ASSERT_TRUE(behind.ok()) << behind.status().ToString();
  ASSERT_EQ(behind->size(), 1u);
  EXPECT_EQ((*behind)[0].rfind("gw_", 0), 0u) << (*behind)[0];

  lagging->Shutdown();
  EXPECT_EQ(LoadRecords(), 0) << "a stopped gateway must not hold ctrl's route step back";
  behind = store_->WaitForGateways(store_->NowMs(), 300ms);
  ASSERT_TRUE(behind.ok());
  EXPECT_TRUE(behind->empty());
}

INSTANTIATE_TEST_SUITE_P(Drivers, RoutePropagationTest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) {
                           return std::string(slipway::testing::TestDriverName(info.param));
                         });

}  // namespace
}  // namespace slipway::gateway
