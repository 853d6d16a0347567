// The buildkit backend's pure parts: registry credentials from settings and config.json, the
// per-project cache reference, BuildKit progress records rendered as log lines with the failed
// step remembered, and the settings refused before any daemon is dialed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "base/crypto.h"
#include "ctrl/build/backend.h"
#include "ctrl/build/buildkit/buildkit_backend.h"
#include "ctrl/build/buildkit/registry_credentials.h"
#include "ctrl/build/buildkit_progress.h"
#include "moby/buildkit/v1/control.pb.h"
#include "support/test_support.h"

namespace slipway::ctrl::build {
namespace {

using buildkit::RegistryCredentials;
namespace fs = std::filesystem;

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

TEST(RegistryCredentialsTest, SettingsAndConfigJsonGiveCredentialsPerHost) {
  testing::TempDir dir;
  Write(dir.path() / "config.json",
        R"({"auths": {"https://index.docker.io/v1/": {"auth": ")" + Base64Encode("hub:hubpw") +
            R"("}, "http://127.0.0.1:5001/": {"username": "u", "password": "p"}, "ghcr.io": {"identitytoken": "tok"}}})");
  auto creds = RegistryCredentials::Load("127.0.0.1:5000", "ci", "cipw", dir.path().string());
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  ASSERT_TRUE(creds->For("127.0.0.1:5000").has_value());
  EXPECT_EQ(creds->For("127.0.0.1:5000")->username, "ci");
  EXPECT_EQ(creds->For("127.0.0.1:5000")->secret, "cipw");
  ASSERT_TRUE(creds->For("docker.io").has_value());
  EXPECT_EQ(creds->For("docker.io")->secret, "hubpw");
  ASSERT_TRUE(creds->For("127.0.0.1:5001").has_value());
  EXPECT_EQ(creds->For("127.0.0.1:5001")->username, "u");
  EXPECT_EQ(creds->For("ghcr.io")->secret, "tok");
  EXPECT_FALSE(creds->For("quay.io").has_value()) << "an unknown host is anonymous";
}

TEST(RegistryCredentialsTest, BadSettingsAreRefusedWithWhatToDo) {
  testing::TempDir dir;
  auto no_registry = RegistryCredentials::Load("", "u", "p", dir.path().string());
  ASSERT_FALSE(no_registry.ok());
  EXPECT_THAT(no_registry.status().message(), ::testing::HasSubstr("REGISTRY is not"));
  auto half = RegistryCredentials::Load("127.0.0.1:5000", "u", "", dir.path().string());
  ASSERT_FALSE(half.ok());
  Write(dir.path() / "config.json", "{not json");
  auto broken = RegistryCredentials::Load("", "", "", dir.path().string());
  ASSERT_FALSE(broken.ok());
  EXPECT_THAT(broken.status().message(), ::testing::HasSubstr("config.json is not valid JSON"));
  auto none = RegistryCredentials::Load("", "", "", (dir.path() / "absent").string());
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty()) << "no config.json is no credentials, and no session";
}

TEST(RegistryCredentialsTest, RegistryHostOfImageReferences) {
  EXPECT_EQ(buildkit::RegistryHostOf("127.0.0.1:5000/app:1"), "127.0.0.1:5000");
  EXPECT_EQ(buildkit::RegistryHostOf("ghcr.io/org/app:1"), "ghcr.io");
  EXPECT_EQ(buildkit::RegistryHostOf("localhost/app"), "localhost");
  EXPECT_EQ(buildkit::RegistryHostOf("org/app:1"), "docker.io");
  EXPECT_EQ(buildkit::RegistryHostOf("app"), "docker.io");
}

TEST(BuildkitCacheRefTest, OneTagPerProjectInTheCacheRepository) {
  EXPECT_EQ(buildkit::CacheRef("127.0.0.1:5000", "slipway-cache", "prj_0123abcd"),
            "127.0.0.1:5000/slipway-cache:prj_0123abcd");
  EXPECT_NE(buildkit::CacheRef("r", "c", "prj_a"), buildkit::CacheRef("r", "c", "prj_b"));
  EXPECT_EQ(buildkit::CacheRef("r", "c", "a/b:c"), "r/c:a-b-c") << "only tag characters";
}

TEST(BuildkitBackendConfigTest, RefusedBeforeDialing) {
  BuildBackendConfig c;
  c.backend = "buildkit";
  auto no_registry = MakeBuildBackend(c);
  ASSERT_FALSE(no_registry.ok());
  EXPECT_THAT(no_registry.status().message(), ::testing::HasSubstr("set REGISTRY"));
  c.registry = "127.0.0.1:5000";
  c.buildkit_host = "http://nowhere";
  auto bad_host = MakeBuildBackend(c);
  ASSERT_FALSE(bad_host.ok());
  EXPECT_THAT(bad_host.status().message(), ::testing::HasSubstr("unix:///path nor tcp://host:port"));
  c.buildkit_host = "tcp://127.0.0.1:1";
  c.buildkit_tls_ca = "/nonexistent/ca.pem";
  c.buildkit_tls_cert = "/nonexistent/c.pem";
  c.buildkit_tls_key = "/nonexistent/k.pem";
  auto missing_pem = MakeBuildBackend(c);
  ASSERT_FALSE(missing_pem.ok());
  EXPECT_THAT(missing_pem.status().message(), ::testing::HasSubstr("BUILDKIT_TLS_CA"));
  c.buildkit_tls_ca.clear();
  c.buildkit_tls_cert.clear();
  c.buildkit_tls_key.clear();
  c.buildkit_cache = "s3";
  EXPECT_FALSE(MakeBuildBackend(c).ok());
  c.buildkit_cache = "registry";
  EXPECT_TRUE(MakeBuildBackend(c).ok()) << "dialing is lazy: an absent daemon is a build-time error";
}

moby::buildkit::v1::StatusResponse Record(const std::string& digest, const std::string& name,
                                          bool started, bool completed, const std::string& error = "",
                                          bool cached = false) {
  moby::buildkit::v1::StatusResponse r;
  auto* v = r.add_vertexes();
  v->set_digest(digest);
  v->set_name(name);
  v->set_cached(cached);
  if (started) v->mutable_started()->set_seconds(100);
  if (completed) {
    v->mutable_completed()->set_seconds(101);
    v->mutable_completed()->set_nanos(500000000);
  }
  v->set_error(error);
  return r;
}

TEST(BuildkitProgressTest, StepsOutputCachedAndTheFailedStepWithItsLastLines) {
  std::vector<std::string> lines;
  BuildkitProgress p([&](std::string_view l) { lines.emplace_back(l); });
  p.Apply(Record("sha256:a", "[1/2] COPY x /x", true, true, "", true));
  p.Apply(Record("sha256:b", "[2/2] RUN make", true, false));
  moby::buildkit::v1::StatusResponse logs;
  for (int i = 0; i < 15; ++i) {
    auto* l = logs.add_logs();
    l->set_vertex("sha256:b");
    l->set_msg(i == 14 ? "\x1b[31mlast line\x1b[0m\npartial" : "line " + std::to_string(i) + "\n");
  }
  p.Apply(logs);
  p.Apply(Record("sha256:b", "[2/2] RUN make", true, true, "process \"make\" did not complete successfully: exit code: 2"));
  p.Finish();

  EXPECT_THAT(lines, ::testing::Contains("#1 [1/2] COPY x /x"));
  EXPECT_THAT(lines, ::testing::Contains("#1 CACHED"));
  EXPECT_THAT(lines, ::testing::Contains("#2 [2/2] RUN make"));
  EXPECT_THAT(lines, ::testing::Contains("#2 line 0"));
  EXPECT_THAT(lines, ::testing::Contains("#2 last line")) << "ANSI removed";
  EXPECT_THAT(lines, ::testing::Contains("#2 partial")) << "Finish flushes the unterminated rest";
  EXPECT_EQ(p.failed_step(), "[2/2] RUN make");
  EXPECT_THAT(p.failed_error(), ::testing::HasSubstr("exit code: 2"));
  std::string tail = p.FailedStepTail();
  EXPECT_THAT(tail, ::testing::HasSubstr("last line"));
  EXPECT_THAT(tail, ::testing::HasSubstr("partial"));
  EXPECT_THAT(tail, ::testing::Not(::testing::HasSubstr("line 0\n"))) << "only the last lines";
  EXPECT_EQ(std::count(tail.begin(), tail.end(), '\n') + 1,
            static_cast<long>(BuildkitProgress::kTailLines));
}

TEST(BuildkitProgressTest, ACanceledSiblingIsNotTheCause) {
  BuildkitProgress p(nullptr);
  p.Apply(Record("sha256:x", "[stage-1 1/1] RUN wait", true, true, "context canceled"));
  p.Apply(Record("sha256:y", "[stage-0 1/1] RUN fail", true, true, "exit code: 1"));
  EXPECT_EQ(p.failed_step(), "[stage-0 1/1] RUN fail");
}

}  // namespace
}  // namespace slipway::ctrl::build

namespace slipway::ctrl::build {
namespace {

TEST(BuildkitProgressTest, AMissingRegistryCacheIsSaidCalmlyAndIsNotTheFailure) {
  std::vector<std::string> lines;
  BuildkitProgress p([&](std::string_view l) { lines.emplace_back(l); });
  p.Apply(Record("sha256:c", "importing cache manifest from r/c:prj_a", true, true,
                 "failed to configure registry cache importer: r/c:prj_a: not found"));
  EXPECT_THAT(lines, ::testing::Contains(::testing::HasSubstr("#1 no cache imported: ")));
  EXPECT_EQ(p.failed_step(), "");
  p.Apply(Record("sha256:r", "[1/1] RUN false", true, true, "exit code: 1"));
  EXPECT_EQ(p.failed_step(), "[1/1] RUN false");
}

}  // namespace
}  // namespace slipway::ctrl::build
