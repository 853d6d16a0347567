// How the docker build backend chooses between BuildKit (version=2) and the classic builder
// (version=1), against a scripted daemon on a loopback socket (DOCKER_HOST=tcp://...): a daemon
// that refuses BuildKit outright (HTTP 400, as dockerd 18.06 does without experimental mode)
// gets the classic builder, remembered for later builds; a BuildKit build that fails (HTTP 200
// + errorDetail) is never retried with the classic builder; "buildkit" and "classic" force one.
#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "ctrl/build/backend.h"
#include "net/http_server.h"

namespace slipway::ctrl::build {
namespace {

constexpr std::string_view kClassicOk =
    "{\"stream\":\"Step 1/1 : FROM scratch\"}\n{\"stream\":\"\\n\"}\n"
    "{\"aux\":{\"ID\":\"sha256:c1a551c\"}}\n{\"stream\":\"Successfully built c1a551c\\n\"}\n";
constexpr std::string_view kBuildkitFails =
    "{\"errorDetail\":{\"message\":\"executor failed running [/bin/sh -c false]: exit code: 1\"},"
    "\"error\":\"executor failed running [/bin/sh -c false]: exit code: 1\"}\n";
constexpr std::string_view kRefusal =
    "{\"message\":\"buildkit is only supported with experimental mode\"}";

// A daemon whose answer to /build depends on the version asked for; records what was asked.
class ScriptedDaemon {
 public:
  ScriptedDaemon(int buildkit_status, std::string_view buildkit_body)
      : buildkit_status_(buildkit_status), buildkit_body_(buildkit_body) {
    auto server = net::HttpServer::Start(
        {}, [this](const net::HttpRequest& req, net::BodyReader&, net::ResponseWriter& resp) {
          const bool v2 = req.query.find("version=2") != std::string::npos;
          {
            std::lock_guard lock(mu_);
            versions_.push_back(v2 ? 2 : 1);
          }
          net::Headers h;
          h.Set("Content-Type", "application/json");
          if (v2) {
            (void)resp.Send(buildkit_status_, h, buildkit_body_);
          } else {
            (void)resp.Send(200, h, kClassicOk);
          }
        });
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }
  ~ScriptedDaemon() { server_->Shutdown(); }

  std::string host() const { return "tcp://" + server_->address(); }
  std::vector<int> versions() {
    std::lock_guard lock(mu_);
    return versions_;
  }

 private:
  int buildkit_status_;
  std::string buildkit_body_;
  std::unique_ptr<net::HttpServer> server_;
  std::mutex mu_;
  std::vector<int> versions_;
};

std::unique_ptr<BuildBackend> Backend(const ScriptedDaemon& daemon, const std::string& builder) {
  BuildBackendConfig config;
  config.docker_host = daemon.host();
  config.docker_builder = builder;
  auto backend = MakeBuildBackend(config);
  EXPECT_TRUE(backend.ok()) << backend.status().ToString();
  return std::move(backend).value();
}

Result<BuildResult> Build(BuildBackend& backend) {
  BuildRequest req;
  req.project = "p";
  req.context_url = "http://127.0.0.1:1/ctx.tar.gz";
  req.image_name = "p:t";
  return backend.Build(req, [](std::string_view) {});
}

TEST(DockerBuilderSelectionTest, AutoFallsBackToClassicWhenDaemonRefusesBuildkitAndRemembers) {
  ScriptedDaemon daemon(400, kRefusal);
  auto backend = Backend(daemon, "auto");
  auto first = Build(*backend);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->image_id, "sha256:c1a551c");
  auto second = Build(*backend);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(daemon.versions(), (std::vector<int>{2, 1, 1}));
}

TEST(DockerBuilderSelectionTest, AutoNeverRetriesAFailedBuildkitBuildWithClassic) {
  ScriptedDaemon daemon(200, kBuildkitFails);
  auto backend = Backend(daemon, "auto");
  auto result = Build(*backend);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(result.status().message().find("exit code: 1"), std::string::npos);
  EXPECT_EQ(daemon.versions(), (std::vector<int>{2}));
}

TEST(DockerBuilderSelectionTest, ForcedBuildkitReportsTheRefusal) {
  ScriptedDaemon daemon(400, kRefusal);
  auto backend = Backend(daemon, "buildkit");
  auto result = Build(*backend);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("only supported with experimental mode"),
            std::string::npos)
      << result.status().ToString();
  EXPECT_EQ(daemon.versions(), (std::vector<int>{2}));
}

TEST(DockerBuilderSelectionTest, ForcedClassicNeverAsksForBuildkit) {
  ScriptedDaemon daemon(200, kBuildkitFails);
  auto backend = Backend(daemon, "classic");
  auto result = Build(*backend);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(daemon.versions(), (std::vector<int>{1}));
}

}  // namespace
}  // namespace slipway::ctrl::build
