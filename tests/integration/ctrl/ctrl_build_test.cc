// "From a source directory to a built image", through ctrl's Connect API, on SQLite and
// PostgreSQL: GenerateUploadURL, a plain HTTP PUT of the packaged context to the presigned URL,
// CreateBuild, GetBuild until done. The image exists in dockerd, the log arrives in order with
// a working cursor, .dockerignore keeps files out of the image, and every bad input (a broken
// Dockerfile, a context never uploaded, another project's context, an oversized context, an
// unreachable dockerd) ends in a clear error.
#include <gtest/gtest.h>
#include <signal.h>

#include <set>
#include <thread>

#include "ctrl/services.h"
#include "integration/ctrl/ctrl_harness.h"
#include "slipway/ctrl/v1/build.pb.h"
#include "slipway/ctrl/v1/deployment.pb.h"

namespace slipway::ctrl::test {
namespace {

namespace pb = slipway::ctrl::v1;
using testing::TestDriver;

const std::string kGenerateUploadUrl =
    net::ConnectProcedure("slipway.ctrl.v1.BuildService", "GenerateUploadURL");
const std::string kCreateBuild =
    net::ConnectProcedure("slipway.ctrl.v1.BuildService", "CreateBuild");
const std::string kGetBuild = net::ConnectProcedure("slipway.ctrl.v1.BuildService", "GetBuild");
const std::string kCreateDeployment =
    net::ConnectProcedure("slipway.ctrl.v1.DeploymentService", "CreateDeployment");
const std::string kGetDeployment =
    net::ConnectProcedure("slipway.ctrl.v1.DeploymentService", "GetDeployment");

class CtrlBuildTest : public ::testing::TestWithParam<TestDriver> {
 protected:
  void SetUp() override { ctrl_ = Ctrl({}); }

  void TearDown() override {
    for (const auto& project : projects_) RemoveImagesOf(project);
  }

  std::unique_ptr<CtrlHarness> Ctrl(CtrlHarness::Settings settings) {
    settings.driver = GetParam();
    return std::make_unique<CtrlHarness>(settings);
  }

  // A project of this test run, cleaned up afterwards.
  std::string Project(const std::string& suffix) {
    projects_.push_back(RunProject(suffix + "-" + testing::TestDriverName(GetParam())));
    return projects_.back();
  }

  fs::path Context(const std::string& name, const std::string& dockerfile) {
    fs::path dir = tmp_.path() / name;
    WriteBusyboxContext(dir, dockerfile);
    return dir;
  }

  // Packages dir and uploads it the way the CLI does; returns the context key.
  std::string Upload(const net::ConnectClient& client, const std::string& project,
                     const fs::path& dir) {
    PackagedContext ctx = Package(dir, tmp_.path() / (dir.filename().string() + ".tar.gz"));
    pb::GenerateUploadURLRequest req;
    req.set_project(project);
    req.set_sha256(ctx.sha256);
    req.set_size(static_cast<int64_t>(ctx.size));
    auto url = client.Call<pb::GenerateUploadURLResponse>(kGenerateUploadUrl, req);
    EXPECT_TRUE(url.ok()) << url.status().ToString();
    if (!url.ok()) return "";
    EXPECT_FALSE(url->already_uploaded());
    EXPECT_FALSE(url->upload_url().empty());
    Status put = PutToPresignedUrl(url->upload_url(), url->upload_headers(), ctx.path);
    EXPECT_TRUE(put.ok()) << put.ToString();
    return url->context_key();
  }

  Result<std::string> StartBuild(const net::ConnectClient& client, const std::string& project,
                                 const std::string& key, const std::string& dockerfile = "") {
    pb::CreateBuildRequest req;
    req.set_project(project);
    req.set_context_key(key);
    req.set_dockerfile(dockerfile);
    auto resp = client.Call<pb::CreateBuildResponse>(kCreateBuild, req);
    if (!resp.ok()) return resp.status();
    return resp->build_id();
  }

  pb::GetBuildResponse GetBuild(const net::ConnectClient& client, const std::string& id,
                                int64_t log_after = 0) {
    pb::GetBuildRequest req;
    req.set_build_id(id);
    req.set_log_after(log_after);
    auto resp = client.Call<pb::GetBuildResponse>(kGetBuild, req);
    EXPECT_TRUE(resp.ok()) << resp.status().ToString();
    return resp.ok() ? *resp : pb::GetBuildResponse();
  }

  // Polls GetBuild (every 100 ms, as a CLI would, following the log cursor) until the build
  // is done; returns the final answer with the whole log gathered on the way.
  pb::GetBuildResponse WaitForBuild(const net::ConnectClient& client, const std::string& id) {
    pb::GetBuildResponse last;
    std::vector<pb::LogLine> gathered;
    bool done = Eventually(
        [&] {
          int64_t after = gathered.empty() ? 0 : gathered.back().seq();
          last = GetBuild(client, id, after);
          for (const auto& line : last.log()) gathered.push_back(line);
          return last.status() == pb::BUILD_STATUS_SUCCEEDED ||
                 last.status() == pb::BUILD_STATUS_FAILED;
        },
        180s);
    EXPECT_TRUE(done) << "build " << id << " still " << pb::BuildStatus_Name(last.status());
    // Lines written after the last poll.
    pb::GetBuildResponse tail = GetBuild(client, id, gathered.empty() ? 0 : gathered.back().seq());
    for (const auto& line : tail.log()) gathered.push_back(line);
    last.clear_log();
    for (const auto& line : gathered) *last.add_log() = line;
    return last;
  }

  pb::Deployment WaitForDeployment(const net::ConnectClient& client, const std::string& id,
                                   pb::GetDeploymentResponse* final_response = nullptr) {
    pb::GetDeploymentResponse last;
    bool done = Eventually(
        [&] {
          pb::GetDeploymentRequest req;
          req.set_deployment_id(id);
          auto resp = client.Call<pb::GetDeploymentResponse>(kGetDeployment, req);
          if (!resp.ok()) return false;
          last = *resp;
          return last.deployment().status() == pb::DEPLOYMENT_STATUS_READY ||
                 last.deployment().status() == pb::DEPLOYMENT_STATUS_FAILED;
        },
        180s);
    EXPECT_TRUE(done) << "deployment " << id << " still "
                      << pb::DeploymentStatus_Name(last.deployment().status());
    if (final_response != nullptr) *final_response = last;
    return last.deployment();
  }

  static bool Logged(const pb::GetBuildResponse& b, const std::string& text) {
    for (const auto& l : b.log()) {
      if (l.text().find(text) != std::string::npos) return true;
    }
    return false;
  }
  static std::string LogText(const pb::GetBuildResponse& b) {
    std::string all;
    for (const auto& l : b.log()) all += std::to_string(l.seq()) + " " + l.text() + "\n";
    return all;
  }

  testing::TempDir tmp_;
  std::unique_ptr<CtrlHarness> ctrl_;
  std::vector<std::string> projects_;
};

TEST_P(CtrlBuildTest, UploadedContextBecomesAnImageWithAnOrderedLog) {
  const std::string project = Project("hello");
  auto client = ctrl_->Client(ctrl_->token_a(), /*binary=*/true);
  const std::string key =
      Upload(client, project, Context("hello", HelloDockerfile("hi-" + project)));
  ASSERT_EQ(key.rfind("contexts/prj_", 0), 0u) << key;

  auto id = StartBuild(client, project, key);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  pb::GetBuildResponse b = WaitForBuild(client, *id);
  ASSERT_EQ(b.status(), pb::BUILD_STATUS_SUCCEEDED) << b.error() << "\n" << LogText(b);
  EXPECT_EQ(b.project(), project);
  EXPECT_EQ(b.image(), project + ":" + *id);
  EXPECT_TRUE(b.error().empty()) << b.error();
  EXPECT_GE(b.finished_at_ms(), b.created_at_ms());
  EXPECT_FALSE(LocalImageId(b.image()).empty()) << b.image() << " is not in dockerd";
  EXPECT_TRUE(ImageFiles(b.image()).count("www/index.html"));

  // The log: consecutive seq from 1, the RUN step's output in it.
  ASSERT_GE(b.log_size(), 3) << LogText(b);
  for (int i = 0; i < b.log_size(); ++i) {
    EXPECT_EQ(b.log(i).seq(), i + 1) << LogText(b);
    EXPECT_GT(b.log(i).time_ms(), 0);
  }
  EXPECT_TRUE(Logged(b, "hi-" + project)) << LogText(b);

  // The cursor: log_after = n gives exactly the lines after n; after the last, none.
  auto json = ctrl_->Client(ctrl_->token_a(), /*binary=*/false);
  const int64_t middle = b.log(1).seq();
  pb::GetBuildResponse rest = GetBuild(json, *id, middle);
  ASSERT_EQ(rest.log_size(), b.log_size() - 2);
  EXPECT_EQ(rest.log(0).seq(), middle + 1);
  EXPECT_EQ(rest.log(0).text(), b.log(2).text());
  EXPECT_EQ(GetBuild(json, *id, b.log(b.log_size() - 1).seq()).log_size(), 0);
}

TEST_P(CtrlBuildTest, LogLinesArriveWhileTheBuildRuns) {
  const std::string project = Project("stream");
  auto client = ctrl_->Client(ctrl_->token_a());
  const std::string key =
      Upload(client, project,
             Context("stream",
                     "FROM scratch\nCOPY busybox /bin/busybox\n"
                     // The markers are put together by the shell, so the RUN line that
                     // BuildKit logs first does not already hold them.
                     "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"E=ear L=la; echo ${E}ly-" +
                         project + "; /bin/busybox sleep 4; echo ${L}te-" + project + "\"]\n"));
  auto id = StartBuild(client, project, key);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  // A client following the cursor sees the first line while the RUN step still sleeps.
  bool early_while_running = false;
  int64_t after = 0;
  std::string seen;
  ASSERT_TRUE(Eventually(
      [&] {
        pb::GetBuildResponse b = GetBuild(client, *id, after);
        for (const auto& l : b.log()) {
          EXPECT_GT(l.seq(), after) << "the cursor returned an old line";
          after = l.seq();
          seen += l.text() + "\n";
        }
        if (b.status() == pb::BUILD_STATUS_RUNNING &&
            seen.find("early-" + project) != std::string::npos &&
            seen.find("late-" + project) == std::string::npos) {
          early_while_running = true;
        }
        return b.status() == pb::BUILD_STATUS_SUCCEEDED || b.status() == pb::BUILD_STATUS_FAILED;
      },
      120s));
  EXPECT_TRUE(early_while_running) << seen;
  pb::GetBuildResponse rest = GetBuild(client, *id, after);
  for (const auto& l : rest.log()) seen += l.text() + "\n";
  EXPECT_NE(seen.find("late-" + project), std::string::npos) << seen;
}

TEST_P(CtrlBuildTest, ClassicBuilderBuildsTheUploadedContextToo) {
  // The classic builder is pickier than BuildKit about the context URL's Content-Type.
  auto ctrl = Ctrl({.docker_builder = "classic"});
  const std::string project = Project("classic");
  auto client = ctrl->Client(ctrl->token_a());
  const std::string key = Upload(client, project, Context("classic", HelloDockerfile("old")));
  auto id = StartBuild(client, project, key);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  pb::GetBuildResponse b = WaitForBuild(client, *id);
  ASSERT_EQ(b.status(), pb::BUILD_STATUS_SUCCEEDED) << b.error() << "\n" << LogText(b);
  EXPECT_TRUE(Logged(b, "Step 1/4 : FROM scratch")) << LogText(b);
  EXPECT_TRUE(Logged(b, "old")) << LogText(b);
  EXPECT_FALSE(Logged(b, "X-Amz-Signature")) << "the presigned URL is a credential\n" << LogText(b);
  EXPECT_FALSE(LocalImageId(b.image()).empty());
}

TEST_P(CtrlBuildTest, BuildArgsAndADockerfileInASubdirectoryReachTheBuilder) {
  const std::string project = Project("args");
  auto client = ctrl_->Client(ctrl_->token_a());
  fs::path dir = tmp_.path() / "args";
  WriteBusyboxContext(dir, "FROM scratch\n");  // the root Dockerfile is not the one built
  WriteFile(dir / "api" / "Dockerfile",
            "FROM scratch\nARG GREETING\nCOPY busybox /bin/busybox\n"
            "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo arg=$GREETING\"]\n");
  PackagedContext ctx = Package(dir, tmp_.path() / "args.tar.gz", "api/Dockerfile");
  pb::GenerateUploadURLRequest up;
  up.set_project(project);
  up.set_sha256(ctx.sha256);
  up.set_size(static_cast<int64_t>(ctx.size));
  auto url = client.Call<pb::GenerateUploadURLResponse>(kGenerateUploadUrl, up);
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  ASSERT_TRUE(PutToPresignedUrl(url->upload_url(), url->upload_headers(), ctx.path).ok());

  pb::CreateBuildRequest req;
  req.set_project(project);
  req.set_context_key(url->context_key());
  req.set_dockerfile("api/Dockerfile");
  (*req.mutable_build_args())["GREETING"] = "hello-" + project;
  auto created = client.Call<pb::CreateBuildResponse>(kCreateBuild, req);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  pb::GetBuildResponse b = WaitForBuild(client, created->build_id());
  ASSERT_EQ(b.status(), pb::BUILD_STATUS_SUCCEEDED) << b.error() << "\n" << LogText(b);
  EXPECT_TRUE(Logged(b, "arg=hello-" + project)) << LogText(b);

  // A Dockerfile path that leaves the context is refused before anything is built.
  req.set_dockerfile("../etc/Dockerfile");
  auto outside = client.Call<pb::CreateBuildResponse>(kCreateBuild, req);
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(outside.status().code(), Code::kInvalidArgument) << outside.status().ToString();
}

TEST_P(CtrlBuildTest, SameContextTwiceIsAlreadyUploaded) {
  const std::string project = Project("again");
  auto client = ctrl_->Client(ctrl_->token_a());
  fs::path dir = Context("again", HelloDockerfile("again"));
  const std::string key = Upload(client, project, dir);
  ASSERT_FALSE(key.empty());

  PackagedContext ctx = Package(dir, tmp_.path() / "again-2.tar.gz");
  pb::GenerateUploadURLRequest req;
  req.set_project(project);
  req.set_sha256(ctx.sha256);
  req.set_size(static_cast<int64_t>(ctx.size));
  auto again = client.Call<pb::GenerateUploadURLResponse>(kGenerateUploadUrl, req);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->already_uploaded());
  EXPECT_TRUE(again->upload_url().empty());
  EXPECT_EQ(again->context_key(), key);
}

TEST_P(CtrlBuildTest, DockerignoredBigFileAndSecretStayOutOfTheImage) {
  const std::string project = Project("ignore");
  auto client = ctrl_->Client(ctrl_->token_a());
  fs::path dir = Context("ignore", "FROM scratch\nCOPY . /app/\n");
  testing::WriteRandomFile(dir / "big.bin", 8 * 1024 * 1024);
  WriteFile(dir / "config" / "secret.env", "API_TOKEN=hunter2\n");
  WriteFile(dir / "keep.txt", "kept\n");
  WriteFile(dir / ".dockerignore", "big.bin\n**/secret.env\n");

  PackagedContext ctx = Package(dir, tmp_.path() / "ignore-check.tar.gz");
  EXPECT_LT(ctx.size, 4u * 1024 * 1024) << "big.bin was packaged";

  const std::string key = Upload(client, project, dir);
  auto id = StartBuild(client, project, key);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  pb::GetBuildResponse b = WaitForBuild(client, *id);
  ASSERT_EQ(b.status(), pb::BUILD_STATUS_SUCCEEDED) << b.error() << "\n" << LogText(b);

  auto files = ImageFiles(b.image());
  EXPECT_TRUE(files.count("app/busybox"));
  EXPECT_TRUE(files.count("app/keep.txt"));
  EXPECT_TRUE(files.count("app/config")) << "the directory stays; only the secret is ignored";
  EXPECT_FALSE(files.count("app/big.bin"));
  EXPECT_FALSE(files.count("app/config/secret.env"));
}

TEST_P(CtrlBuildTest, BrokenDockerfileFailsTheBuildAndTheDeploymentAtStepBuild) {
  const std::string project = Project("broken");
  auto client = ctrl_->Client(ctrl_->token_a());
  const std::string key =
      Upload(client, project,
             Context("broken", "FROM scratch\nCOPY busybox /bin/busybox\nNOTACOMMAND x\n"));

  auto id = StartBuild(client, project, key);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  pb::GetBuildResponse b = WaitForBuild(client, *id);
  ASSERT_EQ(b.status(), pb::BUILD_STATUS_FAILED) << LogText(b);
  EXPECT_NE(b.error().find("unknown instruction: NOTACOMMAND"), std::string::npos) << b.error();
  EXPECT_TRUE(b.image().empty());
  EXPECT_TRUE(Logged(b, "ERROR: ")) << LogText(b);

  pb::CreateDeploymentRequest req;
  req.set_project(project);
  req.mutable_context()->set_context_key(key);
  auto created = client.Call<pb::CreateDeploymentResponse>(kCreateDeployment, req);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  pb::GetDeploymentResponse last;
  pb::Deployment dep = WaitForDeployment(client, created->deployment_id(), &last);
  EXPECT_EQ(dep.status(), pb::DEPLOYMENT_STATUS_FAILED);
  EXPECT_EQ(dep.failed_step(), "build");
  EXPECT_NE(dep.error().find("unknown instruction: NOTACOMMAND"), std::string::npos) << dep.error();
  ASSERT_GE(dep.steps_size(), 1);
  EXPECT_EQ(dep.steps(0).name(), "build");
  EXPECT_EQ(dep.steps(0).status(), pb::STEP_STATUS_FAILED);
  EXPECT_NE(dep.steps(0).error().find("unknown instruction"), std::string::npos);
  for (int i = 1; i < dep.steps_size(); ++i) {
    EXPECT_EQ(dep.steps(i).status(), pb::STEP_STATUS_PENDING) << dep.steps(i).name();
  }
  ASSERT_GT(last.build_log_size(), 0) << "GetDeployment carries the build log";
  EXPECT_EQ(last.build_log(0).seq(), 1);
  // Its cursor: nothing after the last line.
  pb::GetDeploymentRequest after_last;
  after_last.set_deployment_id(dep.id());
  after_last.set_log_after(last.build_log(last.build_log_size() - 1).seq());
  auto tail = client.Call<pb::GetDeploymentResponse>(kGetDeployment, after_last);
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  EXPECT_EQ(tail->build_log_size(), 0);
  pb::GetBuildResponse dep_build = GetBuild(client, dep.build_id());
  EXPECT_EQ(dep_build.status(), pb::BUILD_STATUS_FAILED);
}

TEST_P(CtrlBuildTest, MissingDockerfileFailsTheBuildClearly) {
  const std::string project = Project("nodf");
  auto client = ctrl_->Client(ctrl_->token_a());
  const std::string key = Upload(client, project, Context("nodf", HelloDockerfile("x")));
  auto id = StartBuild(client, project, key, "api/Dockerfile");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  pb::GetBuildResponse b = WaitForBuild(client, *id);
  ASSERT_EQ(b.status(), pb::BUILD_STATUS_FAILED) << LogText(b);
  EXPECT_NE(b.error().find("no Dockerfile at \"api/Dockerfile\" in the uploaded context"),
            std::string::npos)
      << b.error();
}

TEST_P(CtrlBuildTest, ContextNeverUploadedIsRefusedClearly) {
  const std::string project = Project("ghost");
  auto client = ctrl_->Client(ctrl_->token_a());
  pb::GenerateUploadURLRequest req;
  req.set_project(project);
  req.set_sha256(std::string(64, 'a'));
  req.set_size(1234);
  auto url = client.Call<pb::GenerateUploadURLResponse>(kGenerateUploadUrl, req);
  ASSERT_TRUE(url.ok()) << url.status().ToString();

  // No PUT: the key is well-formed and the project's, but the store has nothing there.
  auto id = StartBuild(client, project, url->context_key());
  ASSERT_FALSE(id.ok()) << "build " << *id << " was accepted";
  EXPECT_EQ(id.status().code(), Code::kFailedPrecondition) << id.status().ToString();
  EXPECT_NE(id.status().message().find("is not in the object store"), std::string::npos)
      << id.status().ToString();
  EXPECT_NE(id.status().message().find("GenerateUploadURL"), std::string::npos);

  pb::CreateDeploymentRequest dep;
  dep.set_project(project);
  dep.mutable_context()->set_context_key(url->context_key());
  auto created = client.Call<pb::CreateDeploymentResponse>(kCreateDeployment, dep);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), Code::kFailedPrecondition) << created.status().ToString();
}

TEST_P(CtrlBuildTest, ContextKeyOfAnotherProjectOrWorkspaceIsRefused) {
  const std::string mine = Project("mine");
  const std::string other = Project("other");
  auto a = ctrl_->Client(ctrl_->token_a());
  const std::string key = Upload(a, other, Context("other", HelloDockerfile("x")));
  ASSERT_FALSE(key.empty());

  // A well-formed key of another project is NotFound, as anything of another workspace is; a
  // malformed one is InvalidArgument.
  auto expect_refused = [&](const net::ConnectClient& client, const std::string& project,
                            const std::string& k, Code code) {
    auto id = StartBuild(client, project, k);
    ASSERT_FALSE(id.ok()) << k;
    EXPECT_EQ(id.status().code(), code) << id.status().ToString();
    const std::string words = code == Code::kNotFound ? "no build context " + k + " in this project"
                                                      : "is not one of project " + project;
    EXPECT_NE(id.status().message().find(words), std::string::npos) << id.status().ToString();
    pb::CreateDeploymentRequest dep;
    dep.set_project(project);
    dep.mutable_context()->set_context_key(k);
    auto created = client.Call<pb::CreateDeploymentResponse>(kCreateDeployment, dep);
    ASSERT_FALSE(created.ok()) << k;
    EXPECT_EQ(created.status().code(), code) << created.status().ToString();
  };
  expect_refused(a, mine, key, Code::kNotFound);
  // Workspace B's project of the same name is another project: A's key is not its own.
  expect_refused(ctrl_->Client(ctrl_->token_b()), other, key, Code::kNotFound);
  expect_refused(a, other, "contexts/../" + key.substr(9), Code::kInvalidArgument);
  expect_refused(a, other, key.substr(0, key.size() - 7) + ".tar.zst", Code::kInvalidArgument);
}

TEST_P(CtrlBuildTest, ConcurrentFirstUploadsOfANewProjectAllSucceed) {
  // Parallel deploys of a project nobody deployed before race to create it.
  const std::string project = Project("race");
  auto client = ctrl_->Client(ctrl_->token_a());
  std::vector<std::thread> threads;
  std::vector<Result<pb::GenerateUploadURLResponse>> answers(6, Status::Internal("not run"));
  for (size_t i = 0; i < answers.size(); ++i) {
    threads.emplace_back([&, i] {
      pb::GenerateUploadURLRequest req;
      req.set_project(project);
      req.set_sha256(std::string(64, "0123456789abcdef"[i]));
      req.set_size(100);
      answers[i] = client.Call<pb::GenerateUploadURLResponse>(kGenerateUploadUrl, req);
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> project_dirs;
  for (const auto& a : answers) {
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    project_dirs.insert(a->context_key().substr(0, a->context_key().rfind('/')));
  }
  EXPECT_EQ(project_dirs.size(), 1u) << "one project, not several";
}

TEST_P(CtrlBuildTest, BadUploadRequestsAreRefused) {
  auto client = ctrl_->Client(ctrl_->token_a());
  auto ask = [&](const std::string& project, const std::string& sha, int64_t size) {
    pb::GenerateUploadURLRequest req;
    req.set_project(project);
    req.set_sha256(sha);
    req.set_size(size);
    return client.Call<pb::GenerateUploadURLResponse>(kGenerateUploadUrl, req);
  };
  const std::string project = Project("limits");
  const std::string sha(64, 'b');
  const int64_t limit = static_cast<int64_t>(ctrl_->options().max_context_bytes);

  auto oversized = ask(project, sha, limit + 1);
  ASSERT_FALSE(oversized.ok());
  EXPECT_EQ(oversized.status().code(), Code::kResourceExhausted) << oversized.status().ToString();
  EXPECT_NE(oversized.status().message().find(".dockerignore"), std::string::npos);
  EXPECT_TRUE(ask(project, sha, limit).ok()) << "the limit itself is allowed";

  EXPECT_EQ(ask(project, sha, 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ask(project, sha, -5).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ask(project, "ABC", 10).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ask(project, std::string(64, 'G'), 10).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ask("Bad_Name", sha, 10).status().code(), Code::kInvalidArgument);
}

TEST_P(CtrlBuildTest, UploadURLTakesOnlyTheSizeAskedFor) {
  // The size limit is checked on the declared size; the URL holds the uploader to it.
  const std::string project = Project("size");
  auto client = ctrl_->Client(ctrl_->token_a());
  fs::path dir = Context("size", HelloDockerfile("size"));
  testing::WriteRandomFile(dir / "payload.bin", 1024 * 1024);
  PackagedContext ctx = Package(dir, tmp_.path() / "size.tar.gz");
  for (int64_t declared : {int64_t{4096}, static_cast<int64_t>(ctx.size) + 1}) {
    pb::GenerateUploadURLRequest req;
    req.set_project(project);
    req.set_sha256(ctx.sha256);
    req.set_size(declared);
    auto url = client.Call<pb::GenerateUploadURLResponse>(kGenerateUploadUrl, req);
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    Status put = PutToPresignedUrl(url->upload_url(), url->upload_headers(), ctx.path);
    EXPECT_FALSE(put.ok()) << ctx.size << " bytes went up on a URL for " << declared;
    auto stored = ctrl_->s3().client().HeadObject(kBucket, url->context_key());
    EXPECT_EQ(stored.status().code(), Code::kNotFound) << "something was stored";
  }
}

TEST_P(CtrlBuildTest, BuildIsPushedWhenCtrlHasARegistry) {
  auto ctrl = Ctrl({.registry = kRegistry});
  const std::string project = Project("push");
  auto client = ctrl->Client(ctrl->token_a());
  const std::string key = Upload(client, project, Context("push", HelloDockerfile("pushed")));
  auto id = StartBuild(client, project, key);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  pb::GetBuildResponse b = WaitForBuild(client, *id);
  ASSERT_EQ(b.status(), pb::BUILD_STATUS_SUCCEEDED) << b.error() << "\n" << LogText(b);
  EXPECT_EQ(b.image(), std::string(kRegistry) + "/" + project + ":" + *id);
  EXPECT_TRUE(RegistryTags(project).count(*id)) << "not in the registry";
  EXPECT_TRUE(Logged(b, "pushed ")) << LogText(b);
  DeleteFromRegistry(project, *id);
}

TEST_P(CtrlBuildTest, UnreachableDockerdFailsTheBuildInsteadOfLeavingItRunning) {
  auto ctrl = Ctrl({.docker_host = "unix://" + (tmp_.path() / "no-dockerd.sock").string()});
  const std::string project = Project("nodocker");
  auto client = ctrl->Client(ctrl->token_a());
  const std::string key = Upload(client, project, Context("nodocker", HelloDockerfile("x")));
  auto id = StartBuild(client, project, key);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  // The step retries (transiently) before giving up: about 8 s of backoff.
  pb::GetBuildResponse b = WaitForBuild(client, *id);
  EXPECT_EQ(b.status(), pb::BUILD_STATUS_FAILED);
  EXPECT_NE(b.error().find("dockerd"), std::string::npos) << b.error();
}

TEST_P(CtrlBuildTest, RunCtrlProcessPrintsItsTokenFirstAndBuilds) {
  // `slipway run ctrl --issue-token WS` as its own process: the token is stdout's first line.
  const int port = testing::FreePort();
  const fs::path out = tmp_.path() / "ctrl.out";
  const std::string db_url = testing::FreshDatabaseUrl(GetParam(), tmp_.path());
  const auto s3 = ctrl_->s3().ClientOptions();
  testing::Process ctrl({"/bin/sh", "-c",
                         "exec '" + testing::SlipwayBinary() + "' run ctrl --listen 127.0.0.1:" +
                             std::to_string(port) + " --database '" + db_url + "' --s3-endpoint " +
                             s3.endpoint + " --s3-access-key " + kAccessKey + " --s3-secret-key " +
                             kSecretKey + " --bucket " + kBucket + " --issue-token ws-proc >'" +
                             out.string() + "' 2>'" + (tmp_.path() / "ctrl.err").string() + "'"});
  std::string token;
  ASSERT_TRUE(Eventually(
      [&] {
        std::string text = fs::exists(out) ? testing::ReadFile(out) : "";
        if (text.find('\n') == std::string::npos) return false;
        token = text.substr(0, text.find('\n'));
        return true;
      },
      30s))
      << testing::ReadFile(tmp_.path() / "ctrl.err");
  EXPECT_EQ(token.rfind("slw_", 0), 0u) << token;
  ASSERT_TRUE(testing::WaitForPort(port));

  net::ConnectClient::Options o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port);
  o.bearer_token = token;
  o.binary = true;
  net::ConnectClient client(o);
  const std::string project = Project("proc");
  const std::string key = Upload(client, project, Context("proc", HelloDockerfile("proc")));
  auto id = StartBuild(client, project, key);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  pb::GetBuildResponse b = WaitForBuild(client, *id);
  EXPECT_EQ(b.status(), pb::BUILD_STATUS_SUCCEEDED) << b.error() << "\n" << LogText(b);
  EXPECT_FALSE(LocalImageId(b.image()).empty());

  ctrl.Signal(SIGTERM);
  EXPECT_EQ(ctrl.Wait(), 0) << testing::ReadFile(tmp_.path() / "ctrl.err");
  EXPECT_EQ(testing::ReadFile(out), token + "\n") << "stdout holds the token and nothing else";
}

TEST(RunCtrlTest, UnknownDockerBuilderIsRefusedAtStart) {
  testing::TempDir tmp;
  EmbeddedS3 s3;
  const auto o = s3.ClientOptions();
  auto run = testing::RunCommand(
      "'" + testing::SlipwayBinary() + "' run ctrl --listen 127.0.0.1:0 --database '" +
      (tmp.path() / "main.db").string() + "' --s3-endpoint " + o.endpoint + " --s3-access-key " +
      kAccessKey + " --s3-secret-key " + kSecretKey + " --docker-builder kaniko");
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("DOCKER_BUILDER \"kaniko\" is not one of auto, buildkit, classic"),
            std::string::npos)
      << run.output;
}

INSTANTIATE_TEST_SUITE_P(Drivers, CtrlBuildTest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) { return testing::TestDriverName(info.param); });

}  // namespace
}  // namespace slipway::ctrl::test
