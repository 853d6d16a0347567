// Load on one `slipway dev`, for correctness only (the figures are bench/load_bench's): 25
// concurrent `slipway deploy`s of distinct projects all reach READY, and 1,000 concurrent
// pollers of GetDeployment, each on its own connection, all get answers about the deployment
// they asked for, with no error; and with ctrl's --max-connections raised to 2,500, 2,000
// concurrent pollers are all answered too (at the default 1,024 the rest would get its 503).
#include <gtest/gtest.h>

#include "integration/e2e/load.h"

namespace slipway::testing {
namespace {

TEST(LoadTest, ConcurrentDeploysAllReadyAndAThousandPollersAllAnswered) {
  DevStack stack({"--max-concurrent-builds", "0"});  // the deploys are of one workspace
  ASSERT_TRUE(stack.ready()) << stack.log();
  ConcurrentDeploys deploys = DeployConcurrently(stack, "load", 25);
  EXPECT_EQ(deploys.ids.size(), 25u)
      << deploys.failures.size() << " deploys did not end READY; first: "
      << (deploys.failures.empty() ? "" : deploys.failures.front()) << "\n" << stack.log();
  ASSERT_FALSE(deploys.ids.empty());
  ConcurrentPolls polls = PollConcurrently(stack, deploys.ids, 1000, 3, std::chrono::milliseconds(100));
  EXPECT_EQ(polls.error_count, 0) << "first errors: "
                                  << (polls.errors.empty() ? "" : polls.errors.front());
  EXPECT_EQ(polls.answered, 3000);
}

TEST(LoadTest, TwoThousandPollersAllAnsweredWithTheConnectionCapRaised) {
  DevStack stack({"--max-connections", "2500"});
  ASSERT_TRUE(stack.ready()) << stack.log();
  ConcurrentDeploys deploys = DeployConcurrently(stack, "cap", 2);
  ASSERT_EQ(deploys.ids.size(), 2u) << (deploys.failures.empty() ? "" : deploys.failures.front());
  ConcurrentPolls polls = PollConcurrently(stack, deploys.ids, 2000, 2, std::chrono::milliseconds(100));
  EXPECT_EQ(polls.error_count, 0) << "first errors: "
                                  << (polls.errors.empty() ? "" : polls.errors.front());
  EXPECT_EQ(polls.answered, 4000);
}

}  // namespace
}  // namespace slipway::testing
