// ctrl's limits, on SQLite and PostgreSQL, against the real dockerd: a build context over the
// maximum size is refused before it is uploaded (GenerateUploadURL) and when a build names one
// that got into the store some other way (CreateBuild, CreateDeployment); a build past the build
// timeout is stopped and fails saying so; a build's stored log stops at its cap with a line
// saying so; a workspace at its cap on concurrent builds is refused a new one, other workspaces
// are not, and it gets one again once a build ends. Each refusal names its setting.
#include <gtest/gtest.h>

#include "base/crypto.h"
#include "integration/ctrl/ctrl_harness.h"
#include "slipway/ctrl/v1/build.pb.h"
#include "slipway/ctrl/v1/deployment.pb.h"

namespace slipway::ctrl::test {
namespace {

namespace pb = slipway::ctrl::v1;
using testing::TestDriver;

std::string Build(std::string_view method) {
  return net::ConnectProcedure("slipway.ctrl.v1.BuildService", method);
}
std::string Deployments(std::string_view method) {
  return net::ConnectProcedure("slipway.ctrl.v1.DeploymentService", method);
}

class CtrlLimitsTest : public ::testing::TestWithParam<TestDriver> {
 protected:
  void StartCtrl(std::function<void(CtrlOptions&)> configure,
                 uint64_t max_context_bytes = 64 << 20) {
    CtrlHarness::Settings s;
    s.driver = GetParam();
    s.max_context_bytes = max_context_bytes;
    s.configure = std::move(configure);
    ctrl_ = std::make_unique<CtrlHarness>(s);
  }
  void TearDown() override {
    for (const auto& p : projects_) RemoveImagesOf(p);
  }

  std::string Project(const std::string& what) {
    projects_.push_back(RunProject(what + "-" + testing::TestDriverName(GetParam())));
    return projects_.back();
  }

  // Uploads a busybox context with that Dockerfile for the project; returns its key.
  std::string Upload(const net::ConnectClient& client, const std::string& project,
                     const std::string& dockerfile) {
    const fs::path dir = tmp_.path() / project / RandomHex(4);
    WriteBusyboxContext(dir, dockerfile);
    PackagedContext ctx = Package(dir, dir.string() + ".tar.gz");
    pb::GenerateUploadURLRequest up;
    up.set_project(project);
    up.set_sha256(ctx.sha256);
    up.set_size(static_cast<int64_t>(ctx.size));
    auto url = client.Call<pb::GenerateUploadURLResponse>(Build("GenerateUploadURL"), up);
    EXPECT_TRUE(url.ok()) << url.status().ToString();
    if (!url.ok()) return "";
    if (!url->already_uploaded()) {
      EXPECT_TRUE(PutToPresignedUrl(url->upload_url(), url->upload_headers(), ctx.path).ok());
    }
    return url->context_key();
  }

  Result<std::string> StartBuild(const net::ConnectClient& client, const std::string& project,
                                 const std::string& key) {
    pb::CreateBuildRequest cb;
    cb.set_project(project);
    cb.set_context_key(key);
    // dockerd's cache is shared by every test process: each build here runs its steps.
    cb.set_no_cache(true);
    auto created = client.Call<pb::CreateBuildResponse>(Build("CreateBuild"), cb);
    if (!created.ok()) return created.status();
    return created->build_id();
  }

  pb::GetBuildResponse WaitForBuild(const net::ConnectClient& client, const std::string& id) {
    pb::GetBuildResponse last;
    EXPECT_TRUE(Eventually([&] {
      pb::GetBuildRequest gb;
      gb.set_build_id(id);
      auto r = client.Call<pb::GetBuildResponse>(Build("GetBuild"), gb);
      if (r.ok()) last = *r;
      return r.ok() &&
             (r->status() == pb::BUILD_STATUS_SUCCEEDED || r->status() == pb::BUILD_STATUS_FAILED);
    }));
    return last;
  }

  static std::string SleepDockerfile() {
    return "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sleep\", \"30\"]\n";
  }

  testing::TempDir tmp_;
  std::unique_ptr<CtrlHarness> ctrl_;
  std::vector<std::string> projects_;
};

TEST_P(CtrlLimitsTest, ContextOverTheMaximumIsRefusedBeforeUploadAndWhenABuildNamesIt) {
  StartCtrl({}, /*max_context_bytes=*/4096);
  auto client = ctrl_->Client(ctrl_->token_a());
  const std::string project = Project("ctxcap");
  pb::GenerateUploadURLRequest up;
  up.set_project(project);
  up.set_sha256(std::string(64, 'a'));
  up.set_size(4097);
  auto refused = client.Call<pb::GenerateUploadURLResponse>(Build("GenerateUploadURL"), up);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("4097 bytes"), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("--max-context-bytes"), std::string::npos);

  // At the limit it is fine; an object of that key made larger behind ctrl's back is refused
  // when a build or a deployment names it, and no record is made.
  up.set_size(4096);
  auto ok = client.Call<pb::GenerateUploadURLResponse>(Build("GenerateUploadURL"), up);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  testing::WriteRandomFile(tmp_.path() / "big", 5000);
  ASSERT_TRUE(ctrl_->s3()
                  .client()
                  .PutObject(kBucket, ok->context_key(), (tmp_.path() / "big").string())
                  .ok());
  auto build = StartBuild(client, project, ok->context_key());
  ASSERT_FALSE(build.ok());
  EXPECT_EQ(build.status().code(), Code::kResourceExhausted) << build.status().ToString();
  EXPECT_NE(build.status().message().find("5000 bytes"), std::string::npos)
      << build.status().message();
  pb::CreateDeploymentRequest cd;
  cd.set_project(project);
  cd.mutable_context()->set_context_key(ok->context_key());
  auto dep = client.Call<pb::CreateDeploymentResponse>(Deployments("CreateDeployment"), cd);
  ASSERT_FALSE(dep.ok());
  EXPECT_EQ(dep.status().code(), Code::kResourceExhausted) << dep.status().ToString();
  auto list = client.Call<pb::ListDeploymentsResponse>(Deployments("ListDeployments"),
                                                       pb::ListDeploymentsRequest());
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->deployments_size(), 0);
}

TEST_P(CtrlLimitsTest, BuildPastTheTimeoutIsStoppedAndFailsSayingSo) {
  StartCtrl([](CtrlOptions& o) { o.build_timeout = 2s; });
  auto client = ctrl_->Client(ctrl_->token_a());
  const std::string project = Project("timeout");
  auto id = StartBuild(client, project, Upload(client, project, SleepDockerfile()));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  pb::GetBuildResponse b = WaitForBuild(client, *id);
  ASSERT_EQ(b.status(), pb::BUILD_STATUS_FAILED) << b.error();
  EXPECT_NE(b.error().find("build timeout"), std::string::npos) << b.error();
  EXPECT_NE(b.error().find("2s"), std::string::npos) << b.error();
  EXPECT_NE(b.error().find("--build-timeout"), std::string::npos) << b.error();
  ASSERT_GT(b.log_size(), 0);
  EXPECT_NE(b.log(b.log_size() - 1).text().find("build timeout"), std::string::npos)
      << b.log(b.log_size() - 1).text();
  EXPECT_TRUE(b.image().empty());
}

TEST_P(CtrlLimitsTest, StoredBuildLogStopsAtItsCapWithALineSayingSo) {
  constexpr uint64_t kCap = 2000;
  StartCtrl([](CtrlOptions& o) { o.max_build_log_bytes = kCap; });
  auto client = ctrl_->Client(ctrl_->token_a());
  const std::string project = Project("logcap");
  // About 24 KB of output, well past the cap; the build itself succeeds.
  auto id = StartBuild(client, project,
                       Upload(client, project,
                              "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", "
                              "\"seq\", \"1\", \"5000\"]\n"));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  pb::GetBuildResponse b = WaitForBuild(client, *id);
  ASSERT_EQ(b.status(), pb::BUILD_STATUS_SUCCEEDED) << b.error();
  ASSERT_GE(b.log_size(), 2);
  uint64_t stored = 0;
  for (int i = 0; i + 1 < b.log_size(); ++i) stored += b.log(i).text().size();
  EXPECT_LE(stored, kCap);
  EXPECT_GT(stored, kCap / 2) << "the log was cut far before its cap";
  const std::string& last = b.log(b.log_size() - 1).text();
  EXPECT_NE(last.find("truncated"), std::string::npos) << last;
  EXPECT_NE(last.find("2000 bytes"), std::string::npos) << last;
  EXPECT_NE(last.find("--max-build-log-bytes"), std::string::npos) << last;
}

TEST_P(CtrlLimitsTest, WorkspaceAtItsBuildCapIsRefusedOthersAreNot) {
  // The timeout ends the sleeping build soon, which frees the place again.
  StartCtrl([](CtrlOptions& o) {
    o.max_concurrent_builds = 1;
    o.build_timeout = 3s;
  });
  auto a = ctrl_->Client(ctrl_->token_a());
  auto b = ctrl_->Client(ctrl_->token_b());
  const std::string project = Project("buildcap");
  const std::string key = Upload(a, project, SleepDockerfile());
  auto first = StartBuild(a, project, key);
  ASSERT_TRUE(first.ok()) << first.status().ToString();

  auto second = StartBuild(a, project, key);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kResourceExhausted);
  EXPECT_NE(second.status().message().find("allows 1 at once per workspace"), std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find("--max-concurrent-builds"), std::string::npos);
  pb::CreateDeploymentRequest cd;
  cd.set_project(project);
  cd.mutable_context()->set_context_key(key);
  auto dep = a.Call<pb::CreateDeploymentResponse>(Deployments("CreateDeployment"), cd);
  ASSERT_FALSE(dep.ok());
  EXPECT_EQ(dep.status().code(), Code::kResourceExhausted) << dep.status().ToString();
  auto list = a.Call<pb::ListDeploymentsResponse>(Deployments("ListDeployments"),
                                                  pb::ListDeploymentsRequest());
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->deployments_size(), 0) << "a refused deployment left a record";

  // Another workspace has its own place.
  const std::string other = Project("buildcap-b");
  auto theirs = StartBuild(b, other, Upload(b, other, HelloDockerfile("cap-b")));
  EXPECT_TRUE(theirs.ok()) << theirs.status().ToString();

  // Once A's build ended, A may build again.
  EXPECT_EQ(WaitForBuild(a, *first).status(), pb::BUILD_STATUS_FAILED);
  auto again = StartBuild(a, project, key);
  EXPECT_TRUE(again.ok()) << again.status().ToString();
  if (again.ok()) WaitForBuild(a, *again);
  if (theirs.ok()) WaitForBuild(b, *theirs);
}

INSTANTIATE_TEST_SUITE_P(Drivers, CtrlLimitsTest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) { return testing::TestDriverName(info.param); });

}  // namespace
}  // namespace slipway::ctrl::test
