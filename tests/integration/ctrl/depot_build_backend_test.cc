// The depot build backend's own answers, without a deployment around it: an unreachable Depot is
// a transient failure (the build step retries it), a token Depot refuses is terminal, and the
// settings are checked at start. Builds themselves are shown end to end in
// tests/integration/e2e/depot_deploy_test.cc against the Depot stand-in.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "ctrl/build/backend.h"
#include "ctrl/build/depot/depot_records.h"
#include "support/depot_standin.h"
#include "support/test_support.h"
#include "workflow/engine.h"

namespace slipway::ctrl::build::depot {
namespace {

// What ctrl's database would hold, in memory.
class MemoryRecords : public DepotRecords {
 public:
  Result<std::string> DepotProjectOf(const std::string& project_id) override {
    std::lock_guard lock(mu_);
    return projects_[project_id];
  }
  Result<std::string> RecordDepotProject(const std::string& project_id,
                                         const std::string& depot_project_id) override {
    std::lock_guard lock(mu_);
    std::string& held = projects_[project_id];
    if (held.empty()) held = depot_project_id;
    return held;
  }
  Result<OpenDepotBuild> OpenDepotBuildOf(const std::string& build_id) override {
    std::lock_guard lock(mu_);
    return open_[build_id];
  }
  Status SetOpenDepotBuild(const std::string& build_id, const OpenDepotBuild& open) override {
    std::lock_guard lock(mu_);
    open_[build_id] = open;
    return Status::Ok();
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> projects_;
  std::map<std::string, OpenDepotBuild> open_;
};

BuildRequest Request() {
  BuildRequest r;
  r.build_id = "bld_depot_unit";
  r.project = "app";
  r.project_id = "prj_depot_unit";
  r.context_url = "http://127.0.0.1:1/never-fetched.tar.gz";
  r.image_name = "app:dep_1";
  return r;
}

TEST(DepotBuildBackendTest, UnreachableDepotIsTransientAndSaysWhere) {
  MemoryRecords records;
  BuildBackendConfig config;
  config.backend = "depot";
  config.depot_token = "any";
  config.depot_api_url = "http://127.0.0.1:" + std::to_string(testing::FreePort());
  auto backend = MakeBuildBackend(config, &records);
  ASSERT_TRUE(backend.ok()) << backend.status().message();
  auto built = (*backend)->Build(Request(), [](std::string_view) {});
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.status().code(), Code::kUnavailable) << built.status().message();
  EXPECT_TRUE(workflow::IsTransient(built.status()));
  EXPECT_NE(built.status().message().find(config.depot_api_url), std::string::npos)
      << built.status().message();
}

TEST(DepotBuildBackendTest, RefusedTokenIsTerminalAndNothingIsCreated) {
  testing::DepotStandIn depot;
  ASSERT_TRUE(depot.ready()) << depot.log();
  MemoryRecords records;
  BuildBackendConfig config;
  config.backend = "depot";
  config.depot_token = "not-the-organization-token";
  config.depot_api_url = depot.url();
  auto backend = MakeBuildBackend(config, &records);
  ASSERT_TRUE(backend.ok());
  auto built = (*backend)->Build(Request(), [](std::string_view) {});
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.status().code(), Code::kPermissionDenied) << built.status().message();
  EXPECT_FALSE(workflow::IsTransient(built.status()));
  EXPECT_NE(built.status().message().find("set DEPOT_TOKEN"), std::string::npos);
  EXPECT_TRUE(depot.State()["projects"].empty());
  EXPECT_EQ(records.DepotProjectOf("prj_depot_unit").value(), "");
}

TEST(DepotBuildBackendTest, CanceledWhileTheMachineIsPendingIsFinishedOnDepotAsCanceled) {
  testing::DepotStandIn depot;
  ASSERT_TRUE(depot.ready()) << depot.log();
  depot.Set({{"machine_pending_ms", 600'000}});
  MemoryRecords records;
  BuildBackendConfig config;
  config.backend = "depot";
  config.depot_token = testing::DepotStandIn::kToken;
  config.depot_api_url = depot.url();
  auto backend = MakeBuildBackend(config, &records);
  ASSERT_TRUE(backend.ok());
  std::atomic<bool> cancel{false};
  std::thread canceler([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    cancel = true;
  });
  auto built = (*backend)->Build(
      Request(), [](std::string_view) {}, &cancel);
  canceler.join();
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.status().code(), Code::kCanceled) << built.status().message();
  nlohmann::json builds = depot.State()["builds"];
  ASSERT_EQ(builds.size(), 1u) << builds.dump();
  EXPECT_EQ(builds[0]["outcome"].value("result", ""), "canceled") << builds[0].dump();
  EXPECT_EQ(builds[0]["machine"].value("state", ""), "pending");
  EXPECT_EQ(records.OpenDepotBuildOf(Request().build_id).value().build_id, "")
      << "finished on Depot, so no longer recorded open";
}

TEST(DepotBuildBackendTest, SettingsOutOfRangeAreRefusedNamingTheSetting) {
  MemoryRecords records;
  BuildBackendConfig config;
  config.backend = "depot";
  auto no_token = MakeBuildBackend(config, &records);
  ASSERT_FALSE(no_token.ok());
  EXPECT_NE(no_token.status().message().find("set DEPOT_TOKEN"), std::string::npos);
  config.depot_token = "t";
  config.depot_cache_keep_gb = 0;
  auto bad_cache = MakeBuildBackend(config, &records);
  ASSERT_FALSE(bad_cache.ok());
  EXPECT_NE(bad_cache.status().message().find("DEPOT_CACHE_KEEP_GB"), std::string::npos);
}

}  // namespace
}  // namespace slipway::ctrl::build::depot
