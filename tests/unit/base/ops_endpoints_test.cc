#include "base/ops_endpoints.h"

#include <gtest/gtest.h>

#include "base/metrics.h"

namespace slipway {
namespace {

TEST(OpsEndpointsTest, HealthzAnswersWithoutAskingTheReadinessProbe) {
  bool asked = false;
  OpsEndpoints ops{nullptr, [&] {
                     asked = true;
                     return Status::Unavailable("database down");
                   }};
  auto answer = AnswerOpsRequest("GET", "/healthz", ops);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(answer->body, "ok\n");
  EXPECT_FALSE(asked);
}

TEST(OpsEndpointsTest, ReadyzReportsTheProbeAndItsReason) {
  Status probe = Status::Ok();
  OpsEndpoints ops{nullptr, [&] { return probe; }};
  EXPECT_EQ(AnswerOpsRequest("GET", "/readyz", ops)->status, 200);
  probe = Status::Unavailable("the main database (postgresql://x) does not answer");
  auto answer = AnswerOpsRequest("GET", "/readyz", ops);
  EXPECT_EQ(answer->status, 503);
  EXPECT_EQ(answer->body, "not ready: the main database (postgresql://x) does not answer\n");
  EXPECT_EQ(AnswerOpsRequest("GET", "/readyz", OpsEndpoints{})->status, 200);
}

TEST(OpsEndpointsTest, MetricsIsTheRegistrysExposition) {
  metrics::Registry registry;
  registry.AddCounter("x_total", "x").With({}).Increment(7);
  auto answer = AnswerOpsRequest("GET", "/metrics", OpsEndpoints{&registry, nullptr});
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(answer->content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(answer->body, registry.Exposition());
  EXPECT_NE(answer->body.find("x_total 7\n"), std::string::npos);
}

TEST(OpsEndpointsTest, OtherPathsAndMethodsAreLeftOrRefused) {
  OpsEndpoints ops;
  EXPECT_FALSE(AnswerOpsRequest("GET", "/", ops));
  EXPECT_FALSE(AnswerOpsRequest("GET", "/healthz/", ops));
  EXPECT_FALSE(AnswerOpsRequest("GET", "/metrics2", ops));
  auto post = AnswerOpsRequest("POST", "/metrics", ops);
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->allow, "GET, HEAD");
  EXPECT_EQ(AnswerOpsRequest("HEAD", "/healthz", ops)->status, 200);
}

}  // namespace
}  // namespace slipway
