// Change notices (db/change_notices.h) on SQLite and PostgreSQL: subscribers of one database and
// topic hear NotifyChange with its payload, whichever Database object either side opened; with
// PostgreSQL a notice sent by another process (psql) arrives through LISTEN, and a listening
// connection that is cut is opened again, its subscribers told that anything may have changed.
#include "db/change_notices.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "support/postgres.h"
#include "support/test_support.h"

namespace slipway::db {
namespace {

using namespace std::chrono_literals;
using testing::TestDriver;

// A bound on waits that only a broken implementation reaches (never a measured time).
constexpr auto kStuck = 20s;

// Records the payloads a subscription heard.
class Heard {
 public:
  std::function<void(std::string_view)> Callback() {
    return [this](std::string_view payload) {
      std::lock_guard lock(mu_);
      payloads_.emplace_back(payload);
      cv_.notify_all();
    };
  }
  bool WaitFor(const std::string& payload) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kStuck, [&] {
      return std::find(payloads_.begin(), payloads_.end(), payload) != payloads_.end();
    });
  }
  std::vector<std::string> payloads() {
    std::lock_guard lock(mu_);
    return payloads_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> payloads_;
};

class ChangeNoticesTest : public ::testing::TestWithParam<TestDriver> {
 protected:
  void SetUp() override {
    url_ = testing::FreshDatabaseUrl(GetParam(), dir_.path());
    auto a = Open(url_);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    writer_ = std::move(a).value();
    auto b = Open(url_);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    reader_ = std::move(b).value();
  }

  testing::TempDir dir_;
  std::string url_;
  std::unique_ptr<Database> writer_;  // two Database objects on one database, as ctrl and a
  std::unique_ptr<Database> reader_;  // gateway in one process have
};

TEST_P(ChangeNoticesTest, SubscribersOfTheTopicHearThePayload) {
  Heard deployments, routes;
  auto a = SubscribeToChanges(*reader_, kDeploymentChangedTopic, deployments.Callback());
  auto b = SubscribeToChanges(*reader_, kRoutesChangedTopic, routes.Callback());
  NotifyChange(*writer_, kDeploymentChangedTopic, "dep_1");
  NotifyChange(*writer_, kRoutesChangedTopic);
  EXPECT_TRUE(deployments.WaitFor("dep_1"));
  EXPECT_TRUE(routes.WaitFor(""));
  for (const auto& p : deployments.payloads()) EXPECT_NE(p, "");  // no route notice here
}

TEST_P(ChangeNoticesTest, ADestroyedSubscriptionIsNotCalled) {
  Heard kept, dropped;
  auto keep = SubscribeToChanges(*reader_, kDeploymentChangedTopic, kept.Callback());
  auto drop = SubscribeToChanges(*reader_, kDeploymentChangedTopic, dropped.Callback());
  drop.reset();
  NotifyChange(*writer_, kDeploymentChangedTopic, "dep_2");
  ASSERT_TRUE(kept.WaitFor("dep_2"));
  EXPECT_TRUE(dropped.payloads().empty());
}

INSTANTIATE_TEST_SUITE_P(Drivers, ChangeNoticesTest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) {
                           return std::string(testing::TestDriverName(info.param));
                         });

// Sends a notice the way another slipway process does, from psql: "<origin> <payload>" on the
// topic's channel.
void NotifyFromPsql(const std::string& url, const std::string& channel, const std::string& wire) {
  auto sent = testing::RunCommand("psql '" + url + "' -v ON_ERROR_STOP=1 -qc \"SELECT pg_notify('" +
                                  channel + "', '" + wire + "')\"");
  ASSERT_EQ(sent.exit_code, 0) << sent.output;
}

TEST(PostgresChangeNoticesTest, ANoticeFromAnotherProcessArrivesThroughListen) {
  testing::TempDir dir;
  const std::string url = testing::FreshDatabaseUrl(TestDriver::kPostgres, dir.path());
  auto db = Open(url);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  Heard heard;
  auto sub = SubscribeToChanges(**db, kDeploymentChangedTopic, heard.Callback());
  NotifyFromPsql(url, "slipway_deployments", "otherprocess dep_from_psql");
  EXPECT_TRUE(heard.WaitFor("dep_from_psql"));
}

TEST(PostgresChangeNoticesTest, ACutListeningConnectionIsOpenedAgainAndSaysSo) {
  testing::TempDir dir;
  const std::string url = testing::FreshDatabaseUrl(TestDriver::kPostgres, dir.path());
  auto db = Open(url);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  Heard heard;
  auto sub = SubscribeToChanges(**db, kRoutesChangedTopic, heard.Callback());
  // The listening connection is the one whose last statement was LISTEN.
  auto cut = (*db)->Query(
      "SELECT pg_terminate_backend(pid) AS cut FROM pg_stat_activity WHERE datname = "
      "current_database() AND query LIKE 'LISTEN%'");
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  ASSERT_EQ(cut->size(), 1u);
  // Notices may have gone by unheard: every subscriber hears "" once it listens again...
  EXPECT_TRUE(heard.WaitFor(""));
  // ...and what other processes announce from then on arrives again.
  NotifyFromPsql(url, "slipway_gateway_routes", "otherprocess after-the-cut");
  EXPECT_TRUE(heard.WaitFor("after-the-cut"));
}

}  // namespace
}  // namespace slipway::db
