// The docker build backend against the real dockerd (20.10) and registry: FROM scratch builds
// with BuildKit (version=2) and with the classic builder (version=1), each decoding its own log
// dialect and returning the image id; the builder's message for a Dockerfile parse error (HTTP
// 400 for the classic builder, HTTP 200 + errorDetail for BuildKit) and for a failing RUN; a
// clear message for a missing Dockerfile; the push to REGISTRY, and no push without it.
//
// The context reaches dockerd the way ctrl hands it over: packaged by cli::PackageContext,
// stored in the embedded S3 store, fetched by dockerd itself through a presigned GET URL.
#include <gtest/gtest.h>

#include <algorithm>

#include "ctrl/build/backend.h"
#include "integration/ctrl/ctrl_harness.h"
#include "workflow/engine.h"

namespace slipway::ctrl::test {
namespace {

class DockerBuildBackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void TearDown() override {
    for (const auto& project : projects_) RemoveImagesOf(project);
  }

  // A project name for this test, remembered for the cleanup.
  std::string Project(const std::string& suffix) {
    projects_.push_back(RunProject(suffix));
    return projects_.back();
  }

  // Packages dir, stores it in S3 and builds it as <project>:t1 with the given builder.
  Built Build(const fs::path& dir, const std::string& project, const std::string& builder,
              const std::string& registry = "", const std::string& dockerfile = "Dockerfile") {
    Built out;
    const std::string context_url = s3_.StoreContext(dir, tmp_.path(), project);

    build::BuildBackendConfig config;
    config.docker_builder = builder;
    config.registry = registry;
    auto backend = build::MakeBuildBackend(config);
    EXPECT_TRUE(backend.ok()) << backend.status().ToString();
    if (!backend.ok()) return out;

    build::BuildRequest req;
    req.build_id = "bld_test";
    req.project = project;
    req.context_url = context_url;
    req.dockerfile = dockerfile;
    req.image_name = project + ":t1";
    out.result = (*backend)->Build(req, [&](std::string_view line) { out.log.emplace_back(line); });
    return out;
  }

  fs::path Context(const std::string& name, const std::string& dockerfile) {
    fs::path dir = tmp_.path() / name;
    WriteBusyboxContext(dir, dockerfile);
    return dir;
  }

  testing::TempDir tmp_;
  EmbeddedS3 s3_;
  std::vector<std::string> projects_;
};

// Each builder's own log dialect, decoded to lines a person reads.
void ExpectBuilderDialect(const std::string& builder, const Built& b) {
  if (builder == "buildkit") {
    EXPECT_TRUE(b.Logged("#1 ")) << b.Joined();  // vertex numbers from the trace protobuf
    EXPECT_TRUE(b.Logged("RUN [")) << b.Joined();
    EXPECT_FALSE(b.Logged("Step 1/")) << b.Joined();
  } else {
    EXPECT_TRUE(b.Logged("Step 1/4 : FROM scratch")) << b.Joined();
    EXPECT_FALSE(b.Logged("#1 ")) << b.Joined();
  }
}

TEST_P(DockerBuildBackendTest, FromScratchBuildDecodesLogAndReturnsImageId) {
  const std::string project = Project("ok-" + GetParam());
  Built b = Build(Context("ok", HelloDockerfile("marker-" + project)), project, GetParam());
  ASSERT_TRUE(b.result.ok()) << b.result.status().ToString() << "\n" << b.Joined();

  EXPECT_EQ(b.result->image, project + ":t1");
  EXPECT_EQ(b.result->image_id.rfind("sha256:", 0), 0u) << b.result->image_id;
  EXPECT_EQ(LocalImageId(project + ":t1"), b.result->image_id);
  EXPECT_TRUE(b.result->digest.empty()) << "no REGISTRY: nothing is pushed";
  EXPECT_TRUE(RegistryTags(project).empty()) << "no REGISTRY: the image stays local";
  EXPECT_TRUE(b.Logged("marker-" + project)) << "the RUN step's output\n" << b.Joined();
  ExpectBuilderDialect(GetParam(), b);
  for (const auto& line : b.log) {
    EXPECT_EQ(line.find('\x1b'), std::string::npos) << "ANSI left in: " << line;
    EXPECT_FALSE(!line.empty() && line.back() == '\n') << line;
  }
  auto files = ImageFiles(project + ":t1");
  EXPECT_TRUE(files.count("bin/busybox")) << "the COPY step";
  EXPECT_TRUE(files.count("www/index.html")) << "the RUN step";
}

TEST_P(DockerBuildBackendTest, DockerfileParseErrorFailsWithTheBuildersMessage) {
  // Classic: HTTP 400 {"message"}; BuildKit: HTTP 200 and a final errorDetail line.
  const std::string project = Project("parse-" + GetParam());
  Built b = Build(Context("parse", "FROM scratch\nCOPY busybox /bin/busybox\nNOTACOMMAND foo\n"),
                  project, GetParam());
  ASSERT_FALSE(b.result.ok()) << b.Joined();
  EXPECT_NE(b.result.status().message().find("unknown instruction: NOTACOMMAND"), std::string::npos)
      << b.result.status().ToString();
  EXPECT_FALSE(workflow::IsTransient(b.result.status())) << "a bad Dockerfile is not retried";
  EXPECT_TRUE(b.Logged("ERROR: ")) << b.Joined();
  EXPECT_TRUE(LocalImageId(project + ":t1").empty());
}

TEST_P(DockerBuildBackendTest, FailingRunFailsWithTheBuildersMessageAndItsOutputLogged) {
  const std::string project = Project("run-" + GetParam());
  Built b = Build(Context("run",
                          "FROM scratch\nCOPY busybox /bin/busybox\n"
                          "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo oops-" +
                              project + " >&2; exit 3\"]\n"),
                  project, GetParam());
  ASSERT_FALSE(b.result.ok()) << b.Joined();
  const std::string& m = b.result.status().message();
  if (GetParam() == "buildkit") {
    EXPECT_NE(m.find("exit code: 3"), std::string::npos) << m;
  } else {
    EXPECT_NE(m.find("returned a non-zero code: 3"), std::string::npos) << m;
  }
  EXPECT_FALSE(workflow::IsTransient(b.result.status()));
  EXPECT_TRUE(b.Logged("oops-" + project)) << "the RUN step's stderr\n" << b.Joined();
  EXPECT_TRUE(LocalImageId(project + ":t1").empty());
}

TEST_P(DockerBuildBackendTest, MissingDockerfileFailsWithAClearMessage) {
  const std::string project = Project("nodf-" + GetParam());
  fs::path dir = Context("nodf", HelloDockerfile("x"));
  // Packaged with its Dockerfile, built asking for one that is not in the context.
  Built b = Build(dir, project, GetParam(), "", "api/Dockerfile");
  ASSERT_FALSE(b.result.ok()) << b.Joined();
  EXPECT_NE(b.result.status().message().find(
                "no Dockerfile at \"api/Dockerfile\" in the uploaded context"),
            std::string::npos)
      << b.result.status().ToString();
  EXPECT_NE(b.result.status().message().find("--dockerfile"), std::string::npos);
  EXPECT_FALSE(workflow::IsTransient(b.result.status()));
}

TEST_P(DockerBuildBackendTest, PushesToTheRegistryWhenOneIsConfigured) {
  const std::string project = Project("push-" + GetParam());
  Built b = Build(Context("push", HelloDockerfile("pushed")), project, GetParam(), kRegistry);
  ASSERT_TRUE(b.result.ok()) << b.result.status().ToString() << "\n" << b.Joined();
  EXPECT_EQ(b.result->image, std::string(kRegistry) + "/" + project + ":t1");
  EXPECT_EQ(b.result->digest.rfind("sha256:", 0), 0u) << b.result->digest;
  EXPECT_TRUE(b.Logged("pushed ")) << b.Joined();
  EXPECT_EQ(RegistryTags(project), std::set<std::string>{"t1"});

  // The registry serves that very manifest: pull it back after removing the local copy.
  RemoveImagesOf(project);
  ASSERT_TRUE(LocalImageId(b.result->image).empty());
  auto pull = testing::RunCommand("/usr/bin/docker pull -q " + b.result->image);
  EXPECT_EQ(pull.exit_code, 0) << pull.output;
  EXPECT_EQ(LocalImageId(b.result->image), b.result->image_id);
  auto digest = testing::RunCommand(
      "/usr/bin/docker image inspect --format "
      "'{{join .RepoDigests \" \"}}' " +
      b.result->image);
  EXPECT_NE(digest.output.find(b.result->digest), std::string::npos) << digest.output;

  DeleteFromRegistry(project, "t1");
}

INSTANTIATE_TEST_SUITE_P(Builders, DockerBuildBackendTest, ::testing::Values("buildkit", "classic"),
                         [](const auto& info) { return info.param; });

class DockerdBuilderChoiceTest : public DockerBuildBackendTest {};

TEST_F(DockerdBuilderChoiceTest, AutoUsesBuildkitOnThisDaemon) {
  // dockerd 20.10 sends no Builder-Version header on /_ping but builds version=2 with no
  // session: "auto" must use BuildKit, not fall back to the classic builder.
  const std::string project = Project("auto");
  Built b = Build(Context("auto", HelloDockerfile("auto")), project, "auto");
  ASSERT_TRUE(b.result.ok()) << b.result.status().ToString() << "\n" << b.Joined();
  ExpectBuilderDialect("buildkit", b);
  EXPECT_EQ(LocalImageId(project + ":t1"), b.result->image_id);
}

TEST_F(DockerdBuilderChoiceTest, UnknownBuilderIsRefusedUpFront) {
  build::BuildBackendConfig config;
  config.docker_builder = "kaniko";
  auto backend = build::MakeBuildBackend(config);
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), Code::kInvalidArgument);
  EXPECT_NE(backend.status().message().find("auto, buildkit, classic"), std::string::npos);
}

TEST_F(DockerdBuilderChoiceTest, UnreachableDaemonIsATransientFailureThatSaysSo) {
  build::BuildBackendConfig config;
  config.docker_host = "unix://" + (tmp_.path() / "no-dockerd.sock").string();
  auto backend = build::MakeBuildBackend(config);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  build::BuildRequest req;
  req.project = "p";
  req.context_url = "http://127.0.0.1:1/none.tar.gz";
  req.image_name = "p:t1";
  auto result = (*backend)->Build(req, [](std::string_view) {});
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(workflow::IsTransient(result.status())) << result.status().ToString();
  EXPECT_NE(result.status().message().find("dockerd"), std::string::npos)
      << result.status().ToString();
}

}  // namespace
}  // namespace slipway::ctrl::test
