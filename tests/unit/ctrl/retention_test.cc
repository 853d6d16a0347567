// The retention plan: which deployments' instances stop and which contexts go, for a project's
// deployments as the store describes them.
#include "ctrl/retention.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace slipway::ctrl {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

RetentionCandidate D(std::string id, std::string env, int64_t created, std::string key,
                     std::string status = "READY", bool live = false, int64_t superseded = 0) {
  RetentionCandidate c;
  c.id = std::move(id);
  c.environment = std::move(env);
  c.created_at_ms = created;
  c.updated_at_ms = created + 10;
  c.context_key = std::move(key);
  c.status = std::move(status);
  c.live = live;
  c.superseded_at_ms = superseded;
  return c;
}

RetentionPolicy Policy(int keep, int64_t grace_ms) {
  RetentionPolicy p;
  p.keep = keep;
  p.grace = std::chrono::milliseconds(grace_ms);
  return p;
}

TEST(RetentionPlanTest, SupersededDeploymentsStopAfterTheGraceAndOldContextsGo) {
  std::vector<RetentionCandidate> ds = {
      D("d1", "production", 100, "k1", "READY", false, 200),
      D("d2", "production", 200, "k2", "READY", false, 300),
      D("d3", "production", 300, "k3", "READY", false, 950),
      D("d4", "production", 400, "k4", "READY", true),
  };
  auto plan = PlanRetention(ds, {}, 1000, Policy(2, 100));
  EXPECT_THAT(plan.stop, ElementsAre("d1", "d2")) << "d3 was superseded 50 ms ago: still in grace";
  EXPECT_THAT(plan.delete_contexts, ElementsAre("k1", "k2")) << "the newest two keep theirs";
}

TEST(RetentionPlanTest, LiveInProgressSharedAndProtectedContextsAreKept) {
  std::vector<RetentionCandidate> ds = {
      D("old-live", "preview", 10, "k-live", "READY", true),  // live in preview, however old
      D("p2", "preview", 20, "k-p2"),
      D("p3", "preview", 30, "k-p3"),
      D("building", "production", 5, "k-b", "BUILDING"),
      D("shared-old", "production", 1, "k-shared", "FAILED"),
      D("shared-new", "production", 50, "k-shared"),
      D("standalone", "production", 2, "k-standalone", "FAILED"),
      D("image", "production", 3, "", "FAILED"),
  };
  auto plan = PlanRetention(ds, {"k-standalone"}, 100000, Policy(1, 0));
  EXPECT_THAT(plan.delete_contexts, ElementsAre("k-p2"))
      << "kept: live, in progress, the newest per environment, a key a kept one shares, a "
         "standalone build's";
  EXPECT_THAT(plan.stop, ElementsAre("p2", "p3", "shared-new")) << "READY and not live: stopped (grace 0)";
}

TEST(RetentionPlanTest, WhatIsStoppedOrDeletedAlreadyIsNotPlannedAgain) {
  auto stopped = D("s", "production", 1, "k", "READY", false, 1);
  stopped.stopped_at_ms = 5;
  stopped.context_deleted_at_ms = 6;
  auto deleted = D("x", "production", 2, "kx", "DELETED");
  auto live = D("l", "production", 3, "kl", "READY", true);
  auto plan = PlanRetention({stopped, deleted, live}, {}, 100000, Policy(1, 0));
  EXPECT_THAT(plan.stop, IsEmpty());
  EXPECT_THAT(plan.delete_contexts, ElementsAre("kx")) << "a deleted deployment's context is not kept";
}

TEST(RetentionPlanTest, PlanSurvivesItsJournalEncoding) {
  RetentionPlan p{{"a", "b"}, {"contexts/p/1.tar.gz"}};
  auto back = DecodeRetentionPlan(EncodeRetentionPlan(p));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->stop, p.stop);
  EXPECT_EQ(back->delete_contexts, p.delete_contexts);
  EXPECT_FALSE(DecodeRetentionPlan("{}").ok());
}

}  // namespace
}  // namespace slipway::ctrl
