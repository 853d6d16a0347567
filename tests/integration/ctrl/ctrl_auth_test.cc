// ctrl's tokens, on SQLite and PostgreSQL: every method but CtrlService.Liveness refuses a call
// without a token or with a wrong one (Unauthenticated); a token never reaches another
// workspace's builds or deployments, which are NotFound to it (not PermissionDenied: ids and
// names do not leak); and the database holds only the tokens' hashes.
#include <gtest/gtest.h>

#include "base/crypto.h"
#include "db/migrations.h"
#include "integration/ctrl/ctrl_harness.h"
#include "slipway/ctrl/v1/build.pb.h"
#include "slipway/ctrl/v1/ctrl.pb.h"
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

class CtrlAuthTest : public ::testing::TestWithParam<TestDriver> {
 protected:
  void SetUp() override {
    CtrlHarness::Settings s;
    s.driver = GetParam();
    ctrl_ = std::make_unique<CtrlHarness>(s);
  }

  // Every method that needs a token, each with a request that would otherwise be valid.
  struct Call {
    std::string procedure;
    std::unique_ptr<google::protobuf::Message> request;
  };
  std::vector<Call> AuthenticatedCalls() {
    std::vector<Call> calls;
    auto upload = std::make_unique<pb::GenerateUploadURLRequest>();
    upload->set_project("auth");
    upload->set_sha256(std::string(64, 'c'));
    upload->set_size(10);
    calls.push_back({Build("GenerateUploadURL"), std::move(upload)});
    auto create = std::make_unique<pb::CreateBuildRequest>();
    create->set_project("auth");
    create->set_context_key("contexts/prj_x/" + std::string(64, 'c') + ".tar.gz");
    calls.push_back({Build("CreateBuild"), std::move(create)});
    auto get = std::make_unique<pb::GetBuildRequest>();
    get->set_build_id("bld_x");
    calls.push_back({Build("GetBuild"), std::move(get)});
    auto deploy = std::make_unique<pb::CreateDeploymentRequest>();
    deploy->set_project("auth");
    deploy->set_image("busybox:never");
    calls.push_back({Deployments("CreateDeployment"), std::move(deploy)});
    auto get_dep = std::make_unique<pb::GetDeploymentRequest>();
    get_dep->set_deployment_id("dep_x");
    calls.push_back({Deployments("GetDeployment"), std::move(get_dep)});
    calls.push_back(
        {Deployments("ListDeployments"), std::make_unique<pb::ListDeploymentsRequest>()});
    return calls;
  }

  std::unique_ptr<CtrlHarness> ctrl_;
};

TEST_P(CtrlAuthTest, LivenessNeedsNoToken) {
  for (bool binary : {false, true}) {
    auto anonymous = ctrl_->Client("", binary);
    auto live = anonymous.Call<pb::LivenessResponse>(
        net::ConnectProcedure("slipway.ctrl.v1.CtrlService", "Liveness"), pb::LivenessRequest());
    ASSERT_TRUE(live.ok()) << live.status().ToString();
    EXPECT_EQ(live->status(), "ok");
    EXPECT_FALSE(live->version().empty());
  }
}

TEST_P(CtrlAuthTest, MissingOrWrongTokenIsUnauthenticated) {
  // A token shaped like a real one, and one that is another token's hash (what the database
  // holds): neither opens anything.
  const std::string lookalike = "slw_" + std::string(48, '0');
  for (const std::string& token :
       {std::string(), std::string("wrong"), lookalike, Sha256Hex(ctrl_->token_a())}) {
    for (bool binary : {false, true}) {
      auto client = ctrl_->Client(token, binary);
      for (const Call& call : AuthenticatedCalls()) {
        Status st = client.CallUnary(call.procedure, *call.request, nullptr);
        EXPECT_EQ(st.code(), Code::kUnauthenticated)
            << call.procedure << " with token \"" << token << "\": " << st.ToString();
        if (token.empty()) {
          EXPECT_NE(st.message().find("Authorization: Bearer"), std::string::npos) << st.message();
        }
      }
    }
  }
  // Not a bearer token at all.
  net::ConnectClient::Options o;
  o.base_url = ctrl_->endpoint();
  o.headers.Set("Authorization", "Basic " + ctrl_->token_a());
  net::ConnectClient basic(o);
  EXPECT_EQ(
      basic.CallUnary(Deployments("ListDeployments"), pb::ListDeploymentsRequest(), nullptr).code(),
      Code::kUnauthenticated);
}

TEST_P(CtrlAuthTest, AnotherWorkspacesBuildsAndDeploymentsAreNotFound) {
  auto a = ctrl_->Client(ctrl_->token_a());
  auto b = ctrl_->Client(ctrl_->token_b(), /*binary=*/true);
  const std::string project =
      RunProject(std::string("auth-") + testing::TestDriverName(GetParam()));

  // Workspace A: a build (of a broken Dockerfile: fails fast, leaves no image) and a deployment.
  testing::TempDir tmp;
  WriteBusyboxContext(tmp.path() / "ctx", "FROM scratch\nBROKEN\n");
  PackagedContext ctx = Package(tmp.path() / "ctx", tmp.path() / "ctx.tar.gz");
  pb::GenerateUploadURLRequest up;
  up.set_project(project);
  up.set_sha256(ctx.sha256);
  up.set_size(static_cast<int64_t>(ctx.size));
  auto url = a.Call<pb::GenerateUploadURLResponse>(Build("GenerateUploadURL"), up);
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  ASSERT_TRUE(PutToPresignedUrl(url->upload_url(), ctx.path).ok());
  pb::CreateBuildRequest cb;
  cb.set_project(project);
  cb.set_context_key(url->context_key());
  auto build = a.Call<pb::CreateBuildResponse>(Build("CreateBuild"), cb);
  ASSERT_TRUE(build.ok()) << build.status().ToString();
  pb::CreateDeploymentRequest cd;
  cd.set_project(project);
  cd.set_image("busybox:never-run");
  auto dep = a.Call<pb::CreateDeploymentResponse>(Deployments("CreateDeployment"), cd);
  ASSERT_TRUE(dep.ok()) << dep.status().ToString();

  // A sees its own.
  pb::GetBuildRequest gb;
  gb.set_build_id(build->build_id());
  EXPECT_TRUE(a.Call<pb::GetBuildResponse>(Build("GetBuild"), gb).ok());
  pb::GetDeploymentRequest gd;
  gd.set_deployment_id(dep->deployment_id());
  EXPECT_TRUE(a.Call<pb::GetDeploymentResponse>(Deployments("GetDeployment"), gd).ok());

  // B, with a valid token of its own, sees nothing of A's, and cannot tell it from a miss.
  auto b_build = b.Call<pb::GetBuildResponse>(Build("GetBuild"), gb);
  ASSERT_FALSE(b_build.ok());
  EXPECT_EQ(b_build.status().code(), Code::kNotFound) << b_build.status().ToString();
  EXPECT_EQ(b_build.status().message().find(project), std::string::npos)
      << "leaks the project name: " << b_build.status().message();
  auto b_dep = b.Call<pb::GetDeploymentResponse>(Deployments("GetDeployment"), gd);
  ASSERT_FALSE(b_dep.ok());
  EXPECT_EQ(b_dep.status().code(), Code::kNotFound) << b_dep.status().ToString();
  EXPECT_EQ(b_dep.status().message().find(project), std::string::npos) << b_dep.status().message();

  pb::GetBuildRequest missing;
  missing.set_build_id("bld_doesnotexist");
  auto miss = b.Call<pb::GetBuildResponse>(Build("GetBuild"), missing);
  EXPECT_EQ(miss.status().code(), Code::kNotFound);

  pb::ListDeploymentsRequest list;
  auto b_list = b.Call<pb::ListDeploymentsResponse>(Deployments("ListDeployments"), list);
  ASSERT_TRUE(b_list.ok()) << b_list.status().ToString();
  EXPECT_EQ(b_list->deployments_size(), 0);
  auto a_list = a.Call<pb::ListDeploymentsResponse>(Deployments("ListDeployments"), list);
  ASSERT_TRUE(a_list.ok()) << a_list.status().ToString();
  EXPECT_EQ(a_list->deployments_size(), 1);

  // Let A's build finish before the database goes away with the harness.
  EXPECT_TRUE(Eventually([&] {
    auto r = a.Call<pb::GetBuildResponse>(Build("GetBuild"), gb);
    return r.ok() && r->status() == pb::BUILD_STATUS_FAILED;
  }));
}

TEST_P(CtrlAuthTest, TokensAreStoredOnlyAsHashes) {
  auto db = db::OpenMain(ctrl_->options().database_url);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto rows = (*db)->Query("SELECT * FROM api_tokens");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  std::set<std::string> hashes;
  for (const db::Row& row : *rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      const std::string value = row[i].AsText();
      for (const std::string& token : {ctrl_->token_a(), ctrl_->token_b()}) {
        EXPECT_EQ(value.find(token), std::string::npos)
            << "column " << row.column_name(i) << " holds a plaintext token";
        // Nor a recognisable piece of one.
        EXPECT_EQ(value.find(token.substr(4, 16)), std::string::npos) << row.column_name(i);
      }
    }
    hashes.insert(row["token_sha256"].AsText());
  }
  EXPECT_EQ(hashes,
            (std::set<std::string>{Sha256Hex(ctrl_->token_a()), Sha256Hex(ctrl_->token_b())}));

  if (GetParam() == TestDriver::kSqlite) {
    // The raw database files (and the WAL) never saw the plaintext either.
    for (const auto& entry : fs::directory_iterator(ctrl_->dir())) {
      if (!entry.is_regular_file()) continue;
      const std::string bytes = testing::ReadFile(entry.path());
      EXPECT_EQ(bytes.find(ctrl_->token_a()), std::string::npos) << entry.path();
      EXPECT_EQ(bytes.find(ctrl_->token_b()), std::string::npos) << entry.path();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Drivers, CtrlAuthTest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) { return testing::TestDriverName(info.param); });

}  // namespace
}  // namespace slipway::ctrl::test
