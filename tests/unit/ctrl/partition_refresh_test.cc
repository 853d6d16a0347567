// PartitionStore::RefreshInstances, what the instance monitor writes after READY: it changes the
// rows that exist and only those (a deployment stopped or deleted meanwhile, whose rows were
// forgotten, is never brought back), counts what changed, and announces only a change.
#include <gtest/gtest.h>

#include <atomic>

#include "ctrl/partition_store.h"
#include "db/change_notices.h"
#include "db/migrations.h"
#include "support/test_support.h"

namespace slipway::ctrl {
namespace {

class PartitionRefreshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = db::OpenPartition("sqlite://" + (dir_.path() / "partition.db").string());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    db_ = std::move(*opened);
    store_ = std::make_unique<PartitionStore>(*db_);
    notices_ = db::SubscribeToChanges(*db_, db::kRoutesChangedTopic,
                                      [this](std::string_view) { ++announced_; });
  }

  testing::TempDir dir_;
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<PartitionStore> store_;
  std::atomic<int> announced_{0};
  std::unique_ptr<db::ChangeSubscription> notices_;
};

TEST_F(PartitionRefreshTest, ChangesExistingRowsOnlyAndAnnouncesOnlyAChange) {
  ASSERT_TRUE(store_->UpsertInstances("dep_a", {{"dep_a-0", "127.0.0.1:4000", "RUNNING", ""}}).ok());
  const int after_upsert = announced_.load();

  auto died = store_->RefreshInstances(
      "dep_a", {{"dep_a-0", "127.0.0.1:4000", "FAILED", "exited with exit code 7"}});
  ASSERT_TRUE(died.ok()) << died.status().ToString();
  EXPECT_EQ(*died, 1);
  EXPECT_EQ(announced_.load(), after_upsert + 1);
  auto rows = store_->ListInstances("dep_a");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].status, "FAILED");
  EXPECT_EQ((*rows)[0].reason, "exited with exit code 7");

  // The same again changes nothing and says nothing.
  auto same = store_->RefreshInstances(
      "dep_a", {{"dep_a-0", "127.0.0.1:4000", "FAILED", "exited with exit code 7"}});
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, 0);
  EXPECT_EQ(announced_.load(), after_upsert + 1);

  // Rows that do not exist (another replica, a deployment whose rows were forgotten) are not
  // made.
  auto absent = store_->RefreshInstances(
      "dep_a", {{"dep_a-1", "127.0.0.1:4001", "RUNNING", ""}});
  ASSERT_TRUE(absent.ok());
  EXPECT_EQ(*absent, 0);
  ASSERT_TRUE(store_->RemoveDeployment("dep_a").ok());
  auto gone = store_->RefreshInstances("dep_a", {{"dep_a-0", "127.0.0.1:4000", "RUNNING", ""}});
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(*gone, 0);
  auto left = store_->ListInstances("dep_a");
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}

}  // namespace
}  // namespace slipway::ctrl
