// The crash sweep on the docker backends (build on dockerd, instances through krane's docker
// backend), on SQLite and on PostgreSQL: 15 deployments of a context, ctrl SIGKILLed once in
// each, aimed in turn at the moment of the create, the build, the schedule, the wait, the
// OpenAPI scrape and the routing, at their start and later into them (0, 40, 80 ms).
// The site listens 1 s after it starts, so the wait lasts long enough to be killed in.
// Expected: all 15 READY with exactly one container, no step, build or run left unfinished. Why: every step's result is journaled before the next
// starts and every step is idempotent (a build whose result was not journaled is built again,
// krane's create finds the containers by label), so a restarted ctrl resumes each run where
// its journal ends.
#include <gtest/gtest.h>

#include <iostream>

#include "integration/faults/crash_sweep.h"

namespace slipway::faults {
namespace {

class CrashSweepTest : public ::testing::TestWithParam<Databases> {};

TEST_P(CrashSweepTest, CtrlKilledOnceInEachOf15DeploysAtEveryStepAllEndReady) {
  std::unique_ptr<testing::PrivatePostgres> postgres;
  if (GetParam() == Databases::kPostgres) postgres = std::make_unique<testing::PrivatePostgres>();
  FaultStack stack(postgres.get());
  stack.StartAll();
  std::vector<std::string> ids;
  SweepOptions o;
  o.kills = 15;
  o.replicas = 1;
  o.deploy = [&](dt::CtrlClient& client, int k) {
    const std::string project = "sweep-" + std::to_string(k);
    const std::string key =
        dt::UploadSiteContext(client, project, "sweep " + std::to_string(k), stack.dir().path(),
                              /*listen_after_seconds=*/1);
    ids.push_back(dt::DeployContext(client, project, key));
    return ids.back();
  };
  o.running_instances = [](const std::string& id) {
    int running = 0;
    for (const auto& c : dt::ContainersOf(id)) running += c["State"] == "running";
    return running;
  };
  auto kills_at = RunCrashSweep(stack, o);
  std::cout << "[ sweep    ] " << SweepReport(kills_at) << "\n";
  RecordProperty("kills_at", SweepReport(kills_at));
  auto client = stack.Client();
  for (const auto& id : ids) {
    auto d = client.Get(id);
    dt::RemoveContainersOf(id);
    if (d.ok() && !d->image().empty()) {
      (void)dt::Docker("DELETE", "/images/" + net::UriEncode(d->image()) + "?force=1&noprune=1");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Databases, CrashSweepTest,
                         ::testing::Values(Databases::kSqlite, Databases::kPostgres),
                         [](const auto& info) { return DatabasesName(info.param); });

}  // namespace
}  // namespace slipway::faults
