#include "gateway/routing_table.h"

#include <gtest/gtest.h>

namespace slipway::gateway {
namespace {

TEST(CanonicalHostTest, DropsThePortLowercasesAndDropsATrailingDot) {
  EXPECT_EQ(CanonicalHost("hello-production.localhost"), "hello-production.localhost");
  EXPECT_EQ(CanonicalHost("Hello-Prod.LOCALHOST:8080"), "hello-prod.localhost");
  EXPECT_EQ(CanonicalHost("hello.localhost.:80"), "hello.localhost");
  EXPECT_EQ(CanonicalHost(" spaced.localhost "), "spaced.localhost");
  EXPECT_EQ(CanonicalHost("[::1]:8080"), "[::1]");
  EXPECT_EQ(CanonicalHost("127.0.0.1:8080"), "127.0.0.1");
}

TEST(CanonicalHostTest, RefusesWhatIsNotAHost) {
  EXPECT_EQ(CanonicalHost(""), std::nullopt);
  EXPECT_EQ(CanonicalHost(":8080"), std::nullopt);
  EXPECT_EQ(CanonicalHost("a b.localhost"), std::nullopt);
  EXPECT_EQ(CanonicalHost("host:port"), std::nullopt);
  EXPECT_EQ(CanonicalHost("user@host"), std::nullopt);
  EXPECT_EQ(CanonicalHost("[::1"), std::nullopt);
  EXPECT_EQ(CanonicalHost("[::1]x"), std::nullopt);
}

using Entry = RoutingTable::Entry;

TEST(RoutingTableTest, MapsHostsToTheirDeploymentsInstances) {
  auto table = RoutingTable::Build({{"a.localhost", "dep_a", "i2", "127.0.0.1:2"},
                                    {"a.localhost", "dep_a", "i1", "127.0.0.1:1"},
                                    {"a-git-main.localhost", "dep_a", "i1", "127.0.0.1:1"},
                                    {"a-git-main.localhost", "dep_a", "i2", "127.0.0.1:2"},
                                    {"b.localhost", "dep_b", "", ""},
                                    {"MiXed.localhost", "dep_c", "i1", "127.0.0.1:3"}},
                                   nullptr);
  EXPECT_EQ(table.host_count(), 4u);
  EXPECT_EQ(table.deployment_count(), 3u);
  EXPECT_EQ(table.instance_count(), 3u);
  const Backend* a = table.Find("a.localhost");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->deployment_id, "dep_a");
  // Ordered by instance id, whatever the order of the rows.
  EXPECT_EQ(a->addresses, (std::vector<std::string>{"127.0.0.1:1", "127.0.0.1:2"}));
  EXPECT_EQ(table.Find("a-git-main.localhost"), a);  // one backend per deployment
  const Backend* b = table.Find("b.localhost");
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(b->addresses.empty());
  EXPECT_NE(table.Find("mixed.localhost"), nullptr);
  EXPECT_EQ(table.Find("c.localhost"), nullptr);
}

TEST(RoutingTableTest, RotationContinuesAcrossRefreshes) {
  std::vector<Entry> entries = {{"a.localhost", "dep", "i1", "x:1"},
                                {"a.localhost", "dep", "i2", "x:2"},
                                {"a.localhost", "dep", "i3", "x:3"}};
  auto first = RoutingTable::Build(entries, nullptr);
  auto next = first.Find("a.localhost")->NextInRotation(2);
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0], "x:1");
  EXPECT_EQ(next[1], "x:2");  // the retry candidate is the next one in rotation
  EXPECT_EQ(first.Find("a.localhost")->NextInRotation(1)[0], "x:2");

  auto second = RoutingTable::Build(entries, &first);
  EXPECT_TRUE(second.SameRoutes(first));
  EXPECT_EQ(second.Find("a.localhost")->NextInRotation(1)[0], "x:3");
  EXPECT_EQ(second.Find("a.localhost")->NextInRotation(5).size(), 3u);

  entries.pop_back();
  auto third = RoutingTable::Build(entries, &second);
  EXPECT_FALSE(third.SameRoutes(second));
}

TEST(RoutingTableTest, ABackendWithoutInstancesHasNothingToRotate) {
  auto table = RoutingTable::Build({{"a.localhost", "dep", "", ""}}, nullptr);
  EXPECT_TRUE(table.Find("a.localhost")->NextInRotation(2).empty());
}

}  // namespace
}  // namespace slipway::gateway
