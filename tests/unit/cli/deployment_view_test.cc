// How deployments are shown: step lines with times, the status page, the list table, JSON.
#include "cli/deployment_view.h"

#include <gtest/gtest.h>

#include "slipway/ctrl/v1/deployment.pb.h"

namespace slipway::cli {
namespace {

namespace pb = slipway::ctrl::v1;

pb::Deployment FailedDeployment() {
  pb::Deployment d;
  d.set_id("dep_abc123");
  d.set_project("hello");
  d.set_environment("production");
  d.set_branch("main");
  d.set_status(pb::DEPLOYMENT_STATUS_FAILED);
  d.set_failed_step("schedule");
  d.set_error("no krane");
  d.set_image("hello:dep_abc123");
  d.set_created_at_ms(1'000'000);
  d.mutable_git()->set_commit_sha("0123456789abcdef0123456789abcdef01234567");
  d.mutable_git()->set_commit_message("fix the thing");
  auto* build = d.add_steps();
  build->set_name("build");
  build->set_status(pb::STEP_STATUS_SUCCEEDED);
  build->set_started_at_ms(1'000'000);
  build->set_finished_at_ms(1'003'250);
  auto* schedule = d.add_steps();
  schedule->set_name("schedule");
  schedule->set_status(pb::STEP_STATUS_FAILED);
  schedule->set_started_at_ms(1'003'300);
  schedule->set_finished_at_ms(1'003'400);
  schedule->set_error("no krane");
  auto* wait = d.add_steps();
  wait->set_name("wait");
  wait->set_status(pb::STEP_STATUS_PENDING);
  d.add_urls("http://hello-production.localhost:8080");
  d.add_urls("http://hello-abc123.localhost:8080");
  return d;
}

TEST(DeploymentViewTest, StepLines) {
  pb::Deployment d = FailedDeployment();
  EXPECT_EQ(FormatStep(d.steps(0), 0), "  build      succeeded    3.2s");
  EXPECT_EQ(FormatStep(d.steps(1), 0), "  schedule   failed       0.1s  no krane");
  EXPECT_EQ(FormatStep(d.steps(2), 0), "  wait       pending");
  pb::DeploymentStep running;
  running.set_name("wait");
  running.set_status(pb::STEP_STATUS_RUNNING);
  running.set_started_at_ms(10'000);
  EXPECT_EQ(StepElapsedMs(running, 75'000), 65'000);
  EXPECT_EQ(FormatStep(running, 75'000), "  wait       running     1m05s");
}

TEST(DeploymentViewTest, StatusPage) {
  auto lines = FormatDeployment(FailedDeployment(), 1'000'000 + 125'000);
  std::string page;
  for (const auto& l : lines) page += l + "\n";
  EXPECT_NE(page.find("Deployment dep_abc123\n"), std::string::npos) << page;
  EXPECT_NE(page.find("  status       FAILED\n"), std::string::npos) << page;
  EXPECT_NE(page.find("  commit       0123456789ab fix the thing\n"), std::string::npos) << page;
  EXPECT_NE(page.find("  created      2m ago\n"), std::string::npos) << page;
  EXPECT_NE(page.find("  schedule   failed       0.1s  no krane\n"), std::string::npos) << page;
  EXPECT_NE(page.find("URLs\n  http://hello-production.localhost:8080\n"), std::string::npos)
      << page;
  EXPECT_NE(page.find("Error (step schedule): no krane"), std::string::npos) << page;
}

TEST(DeploymentViewTest, ListTableAlignsAndShowsTheMostSpecificUrl) {
  pb::Deployment a = FailedDeployment();
  pb::Deployment b;
  b.set_id("dep_x");
  b.set_project("a-much-longer-project");
  b.set_environment("preview");
  b.set_status(pb::DEPLOYMENT_STATUS_READY);
  auto lines = FormatDeploymentTable({&a, &b}, 1'000'000 + 30'000);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].find("PROJECT"), lines[1].find("hello"));
  EXPECT_EQ(lines[1].find("hello"), lines[2].find("a-much-longer-project"));
  EXPECT_EQ(lines[1].find("FAILED"), lines[2].find("READY"));
  EXPECT_NE(lines[1].find("30s ago"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("http://hello-abc123.localhost:8080"), std::string::npos) << lines[1];
}

TEST(DeploymentViewTest, Json) {
  auto j = DeploymentJson(FailedDeployment(), 0);
  EXPECT_EQ(j["deployment_id"], "dep_abc123");
  EXPECT_EQ(j["status"], "FAILED");
  EXPECT_EQ(j["failed_step"], "schedule");
  EXPECT_EQ(j["error"], "no krane");
  EXPECT_EQ(j["urls"].size(), 2u);
  EXPECT_EQ(j["steps"][0]["elapsed_ms"], 3250);
  EXPECT_TRUE(j["steps"][2]["elapsed_ms"].is_null());
  EXPECT_EQ(j["git"]["commit_message"], "fix the thing");
}

// A READY deployment whose instance died after it was ready: the page and the JSON show the
// instance's state and why, beside a status that stays READY.
TEST(DeploymentViewTest, InstancesAreShownWithTheirStatusAndReason) {
  pb::Deployment d;
  d.set_id("dep_live");
  d.set_project("hello");
  d.set_status(pb::DEPLOYMENT_STATUS_READY);
  auto* dead = d.add_instances();
  dead->set_id("dep_live-0");
  dead->set_status("FAILED");
  dead->set_reason("exited with exit code 7");
  auto* fine = d.add_instances();
  fine->set_id("dep_live-1");
  fine->set_status("RUNNING");
  std::string page;
  for (const auto& l : FormatDeployment(d, 0)) page += l + "\n";
  EXPECT_NE(page.find("  status       READY\n"), std::string::npos) << page;
  EXPECT_NE(page.find("Instances\n  dep_live-0  FAILED  exited with exit code 7\n  dep_live-1  RUNNING\n"),
            std::string::npos)
      << page;
  auto j = DeploymentJson(d, 0);
  ASSERT_EQ(j["instances"].size(), 2u);
  EXPECT_EQ(j["instances"][0]["status"], "FAILED");
  EXPECT_EQ(j["instances"][0]["reason"], "exited with exit code 7");
  EXPECT_EQ(j["instances"][1]["id"], "dep_live-1");
  // Without instances (a list, a stream message) there is no Instances section.
  EXPECT_EQ(DeploymentJson(FailedDeployment(), 0)["instances"].size(), 0u);
}

TEST(DeploymentViewTest, Ages) {
  EXPECT_EQ(FormatAge(0, 59'000), "59s ago");
  EXPECT_EQ(FormatAge(0, 3'600'000), "1h ago");
  EXPECT_EQ(FormatAge(0, 2 * 86'400'000), "2d ago");
  EXPECT_EQ(FormatAge(10, 0), "0s ago");
}

}  // namespace
}  // namespace slipway::cli
