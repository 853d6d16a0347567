// ctrl's tokens, on SQLite and PostgreSQL: every method but CtrlService.Liveness refuses a call
// without a token or with a wrong one (Unauthenticated); a token never reaches another
// workspace's builds or deployments, which are NotFound to it (not PermissionDenied: ids and
// names do not leak); and the database holds only the tokens' hashes.
//
// Every method of every service in proto/slipway/ctrl/v1 has a row in the isolation table and
// a place in the read-scope table: the tests enumerate the services from the .proto files and
// their descriptors, so a new RPC without a row fails them.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <gtest/gtest.h>

#include <map>

#include "base/crypto.h"
#include "db/migrations.h"
#include "integration/ctrl/ctrl_harness.h"
#include "slipway/ctrl/v1/build.pb.h"
#include "slipway/ctrl/v1/ctrl.pb.h"
#include "slipway/ctrl/v1/deployment.pb.h"
#include "slipway/ctrl/v1/env.pb.h"
#include "slipway/ctrl/v1/openapi.pb.h"
#include "slipway/ctrl/v1/token.pb.h"
#include "ctrl/store.h"

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
  ASSERT_TRUE(PutToPresignedUrl(url->upload_url(), url->upload_headers(), ctx.path).ok());
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

namespace gp = google::protobuf;

// Every method of every service defined in proto/slipway/ctrl/v1/*.proto, as
// "package.Service/Method" -> its descriptor. A .proto file whose generated code is not linked
// into ctrl fails the test: its services could not be served.
std::map<std::string, const gp::MethodDescriptor*> EveryCtrlMethod() {
  std::map<std::string, const gp::MethodDescriptor*> methods;
  const fs::path dir = testing::SourceDir() / "proto/slipway/ctrl/v1";
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".proto") continue;
    const std::string name = "slipway/ctrl/v1/" + entry.path().filename().string();
    const gp::FileDescriptor* file = gp::DescriptorPool::generated_pool()->FindFileByName(name);
    EXPECT_NE(file, nullptr) << name << " is not compiled into ctrl";
    if (file == nullptr) continue;
    for (int s = 0; s < file->service_count(); ++s) {
      const gp::ServiceDescriptor* service = file->service(s);
      for (int m = 0; m < service->method_count(); ++m) {
        methods[service->full_name() + "/" + service->method(m)->name()] = service->method(m);
      }
    }
  }
  EXPECT_GE(methods.size(), 19u) << "the services were not found under " << dir;
  return methods;
}

std::unique_ptr<gp::Message> NewMessage(const gp::Descriptor* type) {
  return std::unique_ptr<gp::Message>(
      gp::MessageFactory::generated_factory()->GetPrototype(type)->New());
}

// What workspace A owns in the isolation tests, made through the API as a user would.
struct OwnedByA {
  std::string project;
  std::string context_sha256;
  int64_t context_size = 0;
  std::string context_key;
  std::string build_id;
  std::string deployment_id;
  std::string token_id;
  std::string var_name = "A_ONLY";
};

// One row: the request that names A's things, and what B must get back. `check` empty means
// NotFound; otherwise it judges B's answer itself (calls that take no id of A's, only names,
// which are per workspace: B gets its own, never A's).
struct IsolationRow {
  std::function<void(const OwnedByA&, gp::Message&)> fill;
  std::function<void(const Status&, const gp::Message&, const OwnedByA&)> check;
  // The same call with A's token finds A's thing (is not NotFound): the NotFound B gets is
  // about B, not about a request that would miss anyway.
  bool owner_finds = false;
};

template <typename Request>
std::function<void(const OwnedByA&, gp::Message&)> Fill(std::function<void(const OwnedByA&, Request&)> f) {
  return [f](const OwnedByA& a, gp::Message& m) { f(a, static_cast<Request&>(m)); };
}

template <typename Response>
std::function<void(const Status&, const gp::Message&, const OwnedByA&)> Check(
    std::function<void(const Response&, const OwnedByA&)> f) {
  return [f](const Status& st, const gp::Message& m, const OwnedByA& a) {
    ASSERT_TRUE(st.ok()) << st.ToString();
    f(static_cast<const Response&>(m), a);
  };
}

std::map<std::string, IsolationRow> IsolationRows() {
  std::map<std::string, IsolationRow> rows;
  const std::string build = "slipway.ctrl.v1.BuildService/";
  const std::string deployments = "slipway.ctrl.v1.DeploymentService/";
  auto deployment_id = Fill<pb::GetDeploymentRequest>(
      [](const OwnedByA& a, pb::GetDeploymentRequest& r) { r.set_deployment_id(a.deployment_id); });

  rows[build + "GenerateUploadURL"] = {
      Fill<pb::GenerateUploadURLRequest>([](const OwnedByA& a, pb::GenerateUploadURLRequest& r) {
        r.set_project(a.project);
        r.set_sha256(a.context_sha256);
        r.set_size(a.context_size);
      }),
      Check<pb::GenerateUploadURLResponse>([](const pb::GenerateUploadURLResponse& r, const OwnedByA& a) {
        EXPECT_NE(r.context_key(), a.context_key) << "B was given A's context key";
        EXPECT_FALSE(r.already_uploaded()) << "B learns that A uploaded this context";
      })};
  rows[build + "CreateBuild"] = {Fill<pb::CreateBuildRequest>([](const OwnedByA& a, pb::CreateBuildRequest& r) {
    r.set_project(a.project);
    r.set_context_key(a.context_key);
  })};
  rows[build + "GetBuild"] = {
      Fill<pb::GetBuildRequest>([](const OwnedByA& a, pb::GetBuildRequest& r) { r.set_build_id(a.build_id); }),
      {}, true};
  rows[deployments + "CreateDeployment"] = {
      Fill<pb::CreateDeploymentRequest>([](const OwnedByA& a, pb::CreateDeploymentRequest& r) {
        r.set_project(a.project);
        r.mutable_context()->set_context_key(a.context_key);
      })};
  rows[deployments + "GetDeployment"] = {deployment_id, {}, true};
  rows[deployments + "WatchDeployment"] = {
      Fill<pb::WatchDeploymentRequest>([](const OwnedByA& a, pb::WatchDeploymentRequest& r) {
        r.set_deployment_id(a.deployment_id);
      }),
      {}, true};
  rows[build + "WatchBuild"] = {
      Fill<pb::GetBuildRequest>([](const OwnedByA& a, pb::GetBuildRequest& r) { r.set_build_id(a.build_id); }),
      {}, true};
  rows[deployments + "ListDeployments"] = {
      Fill<pb::ListDeploymentsRequest>([](const OwnedByA& a, pb::ListDeploymentsRequest& r) { r.set_project(a.project); }),
      Check<pb::ListDeploymentsResponse>([](const pb::ListDeploymentsResponse& r, const OwnedByA&) {
        EXPECT_EQ(r.deployments_size(), 0);
      })};
  rows[deployments + "GetOpenApiSpec"] = {Fill<pb::GetOpenApiSpecRequest>(
      [](const OwnedByA& a, pb::GetOpenApiSpecRequest& r) { r.set_deployment_id(a.deployment_id); })};
  rows[deployments + "Rollback"] = {
      Fill<pb::RollbackRequest>([](const OwnedByA& a, pb::RollbackRequest& r) {
        r.set_project(a.project);
        r.set_to_deployment_id(a.deployment_id);
      }),
      {}, true};
  rows[deployments + "Promote"] = {
      Fill<pb::PromoteRequest>([](const OwnedByA& a, pb::PromoteRequest& r) { r.set_deployment_id(a.deployment_id); }),
      {}, true};
  rows[deployments + "Redeploy"] = {
      Fill<pb::RedeployRequest>([](const OwnedByA& a, pb::RedeployRequest& r) { r.set_deployment_id(a.deployment_id); }),
      {}, true};
  rows[deployments + "DeleteDeployment"] = {Fill<pb::DeleteDeploymentRequest>(
      [](const OwnedByA& a, pb::DeleteDeploymentRequest& r) {
        r.set_deployment_id(a.deployment_id);
        r.set_force(true);
      })};
  rows[deployments + "GetLogs"] = {
      Fill<pb::GetLogsRequest>([](const OwnedByA& a, pb::GetLogsRequest& r) { r.set_deployment_id(a.deployment_id); }),
      {}, true};
  rows["slipway.ctrl.v1.OpenApiService/GetOpenApiDiff"] = {
      Fill<pb::GetOpenApiDiffRequest>([](const OwnedByA& a, pb::GetOpenApiDiffRequest& r) {
        r.set_old_deployment_id(a.deployment_id);
        r.set_new_deployment_id(a.deployment_id);
      })};
  rows["slipway.ctrl.v1.TokenService/CreateToken"] = {
      Fill<pb::CreateTokenRequest>([](const OwnedByA&, pb::CreateTokenRequest& r) { r.set_name("b's own"); }),
      Check<pb::CreateTokenResponse>([](const pb::CreateTokenResponse& r, const OwnedByA& a) {
        EXPECT_NE(r.token().id(), a.token_id);
        EXPECT_FALSE(r.secret().empty());
      })};
  rows["slipway.ctrl.v1.TokenService/ListTokens"] = {
      Fill<pb::ListTokensRequest>([](const OwnedByA&, pb::ListTokensRequest&) {}),
      Check<pb::ListTokensResponse>([](const pb::ListTokensResponse& r, const OwnedByA& a) {
        EXPECT_GE(r.tokens_size(), 1);
        for (const auto& t : r.tokens()) EXPECT_NE(t.id(), a.token_id) << "B lists A's token";
      })};
  rows["slipway.ctrl.v1.TokenService/RevokeToken"] = {Fill<pb::RevokeTokenRequest>(
      [](const OwnedByA& a, pb::RevokeTokenRequest& r) { r.set_token_id(a.token_id); })};
  rows["slipway.ctrl.v1.EnvService/SetEnv"] = {
      Fill<pb::SetEnvRequest>([](const OwnedByA& a, pb::SetEnvRequest& r) {
        r.set_project(a.project);
        r.set_name("B_OWN");
        r.set_value("b");
      }),
      Check<pb::SetEnvResponse>([](const pb::SetEnvResponse& r, const OwnedByA&) {
        EXPECT_EQ(r.var().name(), "B_OWN");
      })};
  rows["slipway.ctrl.v1.EnvService/ListEnv"] = {
      Fill<pb::ListEnvRequest>([](const OwnedByA& a, pb::ListEnvRequest& r) { r.set_project(a.project); }),
      [](const Status& st, const gp::Message& m, const OwnedByA& a) {
        // NotFound until B has a project of that name (SetEnv may have made it); then only B's.
        if (st.code() == Code::kNotFound) return;
        ASSERT_TRUE(st.ok()) << st.ToString();
        for (const auto& v : static_cast<const pb::ListEnvResponse&>(m).vars()) {
          EXPECT_NE(v.name(), a.var_name) << "B lists A's variable";
        }
      }};
  rows["slipway.ctrl.v1.EnvService/UnsetEnv"] = {Fill<pb::UnsetEnvRequest>(
      [](const OwnedByA& a, pb::UnsetEnvRequest& r) {
        r.set_project(a.project);
        r.set_name(a.var_name);
      })};
  rows["slipway.ctrl.v1.CtrlService/Liveness"] = {
      Fill<pb::LivenessRequest>([](const OwnedByA&, pb::LivenessRequest&) {}),
      Check<pb::LivenessResponse>([](const pb::LivenessResponse& r, const OwnedByA&) {
        EXPECT_EQ(r.status(), "ok");  // names nothing of any workspace
      })};
  return rows;
}

// The methods a read token may call; every other one (but Liveness) changes something.
const std::set<std::string>& ReadMethods() {
  static const std::set<std::string> kRead = {
      "slipway.ctrl.v1.BuildService/GetBuild",
      "slipway.ctrl.v1.DeploymentService/GetDeployment",
      "slipway.ctrl.v1.DeploymentService/WatchDeployment",
      "slipway.ctrl.v1.BuildService/WatchBuild",
      "slipway.ctrl.v1.DeploymentService/ListDeployments",
      "slipway.ctrl.v1.DeploymentService/GetOpenApiSpec",
      "slipway.ctrl.v1.DeploymentService/GetLogs",
      "slipway.ctrl.v1.OpenApiService/GetOpenApiDiff",
      "slipway.ctrl.v1.TokenService/ListTokens",
      "slipway.ctrl.v1.EnvService/ListEnv",
      "slipway.ctrl.v1.CtrlService/Liveness",
  };
  return kRead;
}

std::string Procedure(const std::string& full) {
  size_t slash = full.find('/');
  return net::ConnectProcedure(full.substr(0, slash), full.substr(slash + 1));
}

// Calls method as its kind needs: unary, or a server stream whose first message lands in
// response (the stream is left after it) and whose status is the call's.
Status CallMethod(const net::ConnectClient& client, const std::string& name,
                  const gp::MethodDescriptor* method, const gp::Message& request,
                  gp::Message* response) {
  if (!method->server_streaming()) return client.CallUnary(Procedure(name), request, response);
  net::StreamCallOptions call;
  call.timeout = std::chrono::seconds(20);
  return client.CallServerStream(Procedure(name), request, *response,
                                 [&](const gp::Message& m) {
                                   response->CopyFrom(m);
                                   return false;
                                 },
                                 call);
}

class CtrlIsolationTest : public CtrlAuthTest {
 protected:
  // Workspace A's project with an uploaded context, a (failing) build, a deployment, a second
  // token and a variable.
  OwnedByA MakeOwnedByA() {
    OwnedByA a;
    a.project = RunProject(std::string("iso-") + testing::TestDriverName(GetParam()));
    auto client = ctrl_->Client(ctrl_->token_a());
    WriteBusyboxContext(tmp_.path() / "ctx", "FROM scratch\nBROKEN\n");
    PackagedContext ctx = Package(tmp_.path() / "ctx", tmp_.path() / "ctx.tar.gz");
    a.context_sha256 = ctx.sha256;
    a.context_size = static_cast<int64_t>(ctx.size);
    pb::GenerateUploadURLRequest up;
    up.set_project(a.project);
    up.set_sha256(ctx.sha256);
    up.set_size(a.context_size);
    auto url = client.Call<pb::GenerateUploadURLResponse>(Build("GenerateUploadURL"), up);
    EXPECT_TRUE(url.ok()) << url.status().ToString();
    if (!url.ok()) return a;
    EXPECT_TRUE(PutToPresignedUrl(url->upload_url(), url->upload_headers(), ctx.path).ok());
    a.context_key = url->context_key();
    pb::CreateBuildRequest cb;
    cb.set_project(a.project);
    cb.set_context_key(a.context_key);
    auto build = client.Call<pb::CreateBuildResponse>(Build("CreateBuild"), cb);
    EXPECT_TRUE(build.ok()) << build.status().ToString();
    a.build_id = build.ok() ? build->build_id() : "";
    pb::CreateDeploymentRequest cd;
    cd.set_project(a.project);
    cd.set_image("busybox:never-run");
    auto dep = client.Call<pb::CreateDeploymentResponse>(Deployments("CreateDeployment"), cd);
    EXPECT_TRUE(dep.ok()) << dep.status().ToString();
    a.deployment_id = dep.ok() ? dep->deployment_id() : "";
    pb::CreateTokenRequest ct;
    ct.set_name("a's second");
    auto token = client.Call<pb::CreateTokenResponse>(
        net::ConnectProcedure("slipway.ctrl.v1.TokenService", "CreateToken"), ct);
    EXPECT_TRUE(token.ok()) << token.status().ToString();
    a.token_id = token.ok() ? token->token().id() : "";
    a_second_token_ = token.ok() ? token->secret() : "";
    pb::SetEnvRequest se;
    se.set_project(a.project);
    se.set_name(a.var_name);
    se.set_value("a-value");
    EXPECT_TRUE(client.Call<pb::SetEnvResponse>(
                          net::ConnectProcedure("slipway.ctrl.v1.EnvService", "SetEnv"), se)
                    .ok());
    // Let the build and the deployment end (no krane here: the deployment fails at schedule),
    // so the owner's calls below see settled records.
    EXPECT_TRUE(Eventually([&] {
      pb::GetBuildRequest gb;
      gb.set_build_id(a.build_id);
      auto r = client.Call<pb::GetBuildResponse>(Build("GetBuild"), gb);
      pb::GetDeploymentRequest gd;
      gd.set_deployment_id(a.deployment_id);
      auto d = client.Call<pb::GetDeploymentResponse>(Deployments("GetDeployment"), gd);
      return r.ok() && r->status() == pb::BUILD_STATUS_FAILED && d.ok() &&
             d->deployment().status() == pb::DEPLOYMENT_STATUS_FAILED;
    }));
    return a;
  }

  testing::TempDir tmp_;
  std::string a_second_token_;
};

TEST_P(CtrlIsolationTest, EveryRpcWithAnotherWorkspacesIdsIsNotFound) {
  const OwnedByA a = MakeOwnedByA();
  ASSERT_FALSE(a.deployment_id.empty());
  ASSERT_FALSE(a.token_id.empty());
  auto rows = IsolationRows();
  const auto methods = EveryCtrlMethod();
  for (const auto& [name, method] : methods) {
    auto row = rows.find(name);
    if (row == rows.end()) {
      ADD_FAILURE() << name << " has no row in IsolationRows(): add one that calls it with "
                    << "workspace A's ids and says what workspace B must get back";
      continue;
    }
    for (bool binary : {false, true}) {
      SCOPED_TRACE(name + (binary ? " (binary)" : " (JSON)"));
      auto request = NewMessage(method->input_type());
      auto response = NewMessage(method->output_type());
      row->second.fill(a, *request);
      Status st = CallMethod(ctrl_->Client(ctrl_->token_b(), binary), name, method, *request,
                             response.get());
      if (row->second.check) {
        row->second.check(st, *response, a);
      } else {
        EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();
      }
    }
    if (row->second.owner_finds) {
      auto request = NewMessage(method->input_type());
      auto response = NewMessage(method->output_type());
      row->second.fill(a, *request);
      Status st = CallMethod(ctrl_->Client(ctrl_->token_a()), name, method, *request, response.get());
      EXPECT_NE(st.code(), Code::kNotFound) << name << " with A's own token: " << st.ToString();
    }
  }
  for (const auto& [name, row] : rows) {
    EXPECT_TRUE(methods.count(name)) << "IsolationRows() has a row for " << name
                                     << ", which no service in proto/slipway/ctrl/v1 defines";
  }
  // Nothing B did reached A: A's token, variable and deployment are as they were.
  auto a_client = ctrl_->Client(a_second_token_);
  pb::ListEnvRequest le;
  le.set_project(a.project);
  auto env = a_client.Call<pb::ListEnvResponse>(
      net::ConnectProcedure("slipway.ctrl.v1.EnvService", "ListEnv"), le);
  ASSERT_TRUE(env.ok()) << "A's second token stopped working: " << env.status().ToString();
  ASSERT_EQ(env->vars_size(), 1);
  EXPECT_EQ(env->vars(0).name(), a.var_name);
  EXPECT_EQ(env->vars(0).value(), "a-value");
  pb::GetDeploymentRequest gd;
  gd.set_deployment_id(a.deployment_id);
  auto dep = a_client.Call<pb::GetDeploymentResponse>(Deployments("GetDeployment"), gd);
  ASSERT_TRUE(dep.ok()) << dep.status().ToString();
  EXPECT_EQ(dep->deployment().status(), pb::DEPLOYMENT_STATUS_FAILED) << "B deleted A's deployment";
}

TEST_P(CtrlIsolationTest, ReadTokenLooksButCannotChangeAnything) {
  const OwnedByA a = MakeOwnedByA();
  ASSERT_FALSE(a.deployment_id.empty());
  auto deploy = ctrl_->Client(ctrl_->token_a());
  pb::CreateTokenRequest ct;
  ct.set_scope(pb::TOKEN_SCOPE_READ);
  ct.set_name("dashboard");
  auto read = deploy.Call<pb::CreateTokenResponse>(
      net::ConnectProcedure("slipway.ctrl.v1.TokenService", "CreateToken"), ct);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->token().scope(), pb::TOKEN_SCOPE_READ);
  auto reader = ctrl_->Client(read->secret(), /*binary=*/true);

  auto rows = IsolationRows();
  for (const auto& [name, method] : EveryCtrlMethod()) {
    SCOPED_TRACE(name);
    auto request = NewMessage(method->input_type());
    auto response = NewMessage(method->output_type());
    if (rows.count(name)) rows[name].fill(a, *request);
    Status st = CallMethod(reader, name, method, *request, response.get());
    if (ReadMethods().count(name)) {
      EXPECT_NE(st.code(), Code::kPermissionDenied) << st.ToString();
      EXPECT_NE(st.code(), Code::kUnauthenticated) << st.ToString();
    } else {
      EXPECT_EQ(st.code(), Code::kPermissionDenied)
          << "a read token was let through (or the method belongs in ReadMethods()): "
          << st.ToString();
      EXPECT_NE(st.message().find("read scope"), std::string::npos) << st.message();
      EXPECT_NE(st.message().find("--scope deploy"), std::string::npos) << st.message();
    }
  }
  // Nothing changed: still one deployment, one token more than before (the read one), A's
  // variable and token as they were.
  pb::ListDeploymentsRequest ld;
  auto list = reader.Call<pb::ListDeploymentsResponse>(Deployments("ListDeployments"), ld);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->deployments_size(), 1);
  auto tokens = reader.Call<pb::ListTokensResponse>(
      net::ConnectProcedure("slipway.ctrl.v1.TokenService", "ListTokens"), pb::ListTokensRequest());
  ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
  EXPECT_EQ(tokens->tokens_size(), 3);  // issued at start, a's second, the read one
  for (const auto& t : tokens->tokens()) EXPECT_EQ(t.revoked_at_ms(), 0) << t.id();
  pb::ListEnvRequest le;
  le.set_project(a.project);
  auto env = reader.Call<pb::ListEnvResponse>(
      net::ConnectProcedure("slipway.ctrl.v1.EnvService", "ListEnv"), le);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  ASSERT_EQ(env->vars_size(), 1);
  EXPECT_EQ(env->vars(0).value(), "a-value");
}

TEST_P(CtrlAuthTest, ExpiredAndRevokedTokensAreRefusedSayingWhich) {
  auto deploy = ctrl_->Client(ctrl_->token_a());
  const std::string tokens = "slipway.ctrl.v1.TokenService";
  pb::CreateTokenRequest ct;
  ct.set_name("ci");
  ct.set_expires_in_seconds(30 * 24 * 3600);
  auto ci = deploy.Call<pb::CreateTokenResponse>(net::ConnectProcedure(tokens, "CreateToken"), ct);
  ASSERT_TRUE(ci.ok()) << ci.status().ToString();
  EXPECT_GT(ci->token().expires_at_ms(), ci->token().created_at_ms() + 29ll * 24 * 3600 * 1000);
  auto ci_client = ctrl_->Client(ci->secret());
  ASSERT_TRUE(ci_client.Call<pb::ListDeploymentsResponse>(Deployments("ListDeployments"),
                                                          pb::ListDeploymentsRequest())
                  .ok());

  // Revoked: refused, saying so and what to do.
  pb::RevokeTokenRequest rv;
  rv.set_token_id(ci->token().id());
  auto revoked = deploy.Call<pb::RevokeTokenResponse>(net::ConnectProcedure(tokens, "RevokeToken"), rv);
  ASSERT_TRUE(revoked.ok()) << revoked.status().ToString();
  EXPECT_GT(revoked->token().revoked_at_ms(), 0);
  auto refused = ci_client.Call<pb::ListDeploymentsResponse>(Deployments("ListDeployments"),
                                                             pb::ListDeploymentsRequest());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kUnauthenticated);
  EXPECT_NE(refused.status().message().find("was revoked"), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find(ci->token().id()), std::string::npos);
  EXPECT_NE(refused.status().message().find("slipway token create"), std::string::npos);

  // Expired: a token whose expiry is already past (issued through the store, as ctrl would
  // have an hour ago), refused saying it expired.
  auto db = db::OpenMain(ctrl_->options().database_url);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  Store store(**db);
  auto ws = store.Authenticate(ctrl_->token_a());
  ASSERT_TRUE(ws.ok()) << ws.status().ToString();
  auto old = store.CreateToken(ws->workspace_id, "old", "deploy", store.NowMs() - 1000);
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  auto expired = ctrl_->Client(old->second, true)
                     .Call<pb::ListDeploymentsResponse>(Deployments("ListDeployments"),
                                                        pb::ListDeploymentsRequest());
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.status().code(), Code::kUnauthenticated);
  EXPECT_NE(expired.status().message().find("expired at"), std::string::npos)
      << expired.status().message();
  EXPECT_EQ(expired.status().message().find("revoked"), std::string::npos);

  // Listed with their states; the plaintext never.
  auto list = deploy.Call<pb::ListTokensResponse>(net::ConnectProcedure(tokens, "ListTokens"),
                                                  pb::ListTokensRequest());
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->tokens_size(), 3);
  std::string dump;
  for (const auto& t : list->tokens()) dump += t.DebugString();
  EXPECT_EQ(dump.find(ci->secret()), std::string::npos);
  EXPECT_EQ(dump.find(old->second), std::string::npos);

  // A bad scope or expiry is refused and makes no token.
  pb::CreateTokenRequest bad;
  bad.set_expires_in_seconds(-5);
  EXPECT_EQ(deploy.Call<pb::CreateTokenResponse>(net::ConnectProcedure(tokens, "CreateToken"), bad)
                .status()
                .code(),
            Code::kInvalidArgument);
  // Revoking another id, or twice: NotFound, then the first revocation time kept.
  rv.set_token_id("tok_doesnotexist");
  EXPECT_EQ(deploy.Call<pb::RevokeTokenResponse>(net::ConnectProcedure(tokens, "RevokeToken"), rv)
                .status()
                .code(),
            Code::kNotFound);
  rv.set_token_id(ci->token().id());
  auto again = deploy.Call<pb::RevokeTokenResponse>(net::ConnectProcedure(tokens, "RevokeToken"), rv);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->token().revoked_at_ms(), revoked->token().revoked_at_ms());
}

INSTANTIATE_TEST_SUITE_P(Drivers, CtrlIsolationTest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) { return testing::TestDriverName(info.param); });

INSTANTIATE_TEST_SUITE_P(Drivers, CtrlAuthTest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) { return testing::TestDriverName(info.param); });

}  // namespace
}  // namespace slipway::ctrl::test
