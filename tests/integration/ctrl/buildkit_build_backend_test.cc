// The buildkit build backend against a real buildkitd (BuildKit v0.34 from the Go module proxy,
// scripts/buildkitd.sh) and the real registry (docker-registry 2.8): the image pushed and pinned
// by digest, a two-platform image index, the per-project registry cache after `buildctl prune
// --all` (used by its project, never by another), a registry that wants credentials, mutual TLS
// with the right and a stranger's client certificate, and the one-line failures a user reads.
//
// The context reaches the daemon the way ctrl hands it over: packaged by cli::PackageContext,
// stored in the embedded S3 store, fetched by buildkitd itself through a presigned GET URL.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "base/crypto.h"
#include "ctrl/build/backend.h"
#include "ctrl/build/buildkit/buildkit_backend.h"
#include "integration/ctrl/ctrl_harness.h"
#include "support/auth_registry.h"
#include "support/buildkit_peer.h"
#include "workflow/engine.h"

namespace slipway::ctrl::test {
namespace {

using testing::AuthRegistry;
using testing::Buildkit;

// A registry's /v2/ API, read as a client that accepts indexes and manifests of both dialects.
struct Registry {
  std::string host = kRegistry;
  std::string user, password;

  Result<net::ClientResponse> Get(const std::string& path) const {
    net::HttpClient http;
    net::ClientRequest req;
    req.url = "http://" + host + "/v2/" + path;
    req.timeout = 10s;
    req.headers.Set("Accept",
                    "application/vnd.oci.image.index.v1+json, "
                    "application/vnd.docker.distribution.manifest.list.v2+json, "
                    "application/vnd.oci.image.manifest.v1+json, "
                    "application/vnd.docker.distribution.manifest.v2+json");
    if (!user.empty()) req.headers.Set("Authorization", "Basic " + Base64Encode(user + ":" + password));
    return http.Do(req);
  }
  Json Manifest(const std::string& repository, const std::string& reference) const {
    auto r = Get(repository + "/manifests/" + reference);
    if (!r.ok() || r->status != 200) return Json();
    return Json::parse(r->body, nullptr, false);
  }
  void Delete(const std::string& repository, const std::string& digest) const {
    net::HttpClient http;
    net::ClientRequest del;
    del.method = "DELETE";
    del.url = "http://" + host + "/v2/" + repository + "/manifests/" + digest;
    if (!user.empty()) del.headers.Set("Authorization", "Basic " + Base64Encode(user + ":" + password));
    (void)http.Do(del);
  }
};

class BuildkitBuildBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string problem = testing::BuildkitProblem();
    ASSERT_TRUE(problem.empty()) << problem;
  }
  void TearDown() override {
    // What this test pushed to the shared registry: images and caches of its projects.
    Registry reg;
    for (const auto& [repo, ref] : pushed_) {
      auto r = reg.Get(repo + "/manifests/" + ref);
      if (r.ok() && r->status == 200) {
        std::string digest = r->headers.GetOr("Docker-Content-Digest", "");
        if (!digest.empty()) reg.Delete(repo, digest);
      }
    }
  }

  std::string Project(const std::string& suffix) { return RunProject(suffix); }

  build::BuildBackendConfig Config() const {
    build::BuildBackendConfig c;
    c.backend = "buildkit";
    c.registry = kRegistry;
    c.buildkit_host = Buildkit().host;
    c.docker_config = (tmp_.path() / "no-docker-config").string();
    c.buildkit_cache_repository = "slipway-test-cache";
    return c;
  }

  // Packages dir, stores it in S3 and builds it as <project>:t1 for the project id given.
  Built Build(const fs::path& dir, const std::string& project, build::BuildBackendConfig config,
              const std::string& platform = "", const std::string& project_id = "",
              const std::atomic<bool>* cancel = nullptr) {
    Built out;
    const std::string context_url = s3_.StoreContext(dir, tmp_.path(), project);

    auto backend = build::MakeBuildBackend(config);
    if (!backend.ok()) {
      out.result = backend.status();
      return out;
    }
    build::BuildRequest req;
    req.build_id = "bld_" + project;
    req.project = project;
    req.project_id = project_id.empty() ? "prj-" + project : project_id;
    req.context_url = context_url;
    req.platform = platform;
    req.image_name = project + ":t1";
    pushed_.emplace_back(project, "t1");
    pushed_.emplace_back(config.buildkit_cache_repository, req.project_id);
    out.result = (*backend)->Build(
        req, [&](std::string_view line) { out.log.emplace_back(line); }, cancel);
    return out;
  }

  fs::path Context(const std::string& name, const std::string& dockerfile) {
    fs::path dir = tmp_.path() / name;
    WriteBusyboxContext(dir, dockerfile);
    return dir;
  }

  testing::TempDir tmp_;
  EmbeddedS3 s3_;
  std::vector<std::pair<std::string, std::string>> pushed_;
};

TEST_F(BuildkitBuildBackendTest, BuildsPushesAndPinsTheImageByDigest) {
  const std::string project = Project("bk-ok");
  Built b = Build(Context("ok", HelloDockerfile("marker-" + project)), project, Config());
  ASSERT_TRUE(b.result.ok()) << b.result.status().ToString() << "\n" << b.Joined();

  const std::string prefix = std::string(kRegistry) + "/" + project + ":t1@sha256:";
  EXPECT_EQ(b.result->image.rfind(prefix, 0), 0u) << b.result->image;
  EXPECT_EQ(b.result->image, std::string(kRegistry) + "/" + project + ":t1@" + b.result->digest);
  // The registry serves exactly that digest for the tag.
  auto head = Registry().Get(project + "/manifests/t1");
  ASSERT_TRUE(head.ok() && head->status == 200);
  EXPECT_EQ(head->headers.GetOr("Docker-Content-Digest", ""), b.result->digest);
  // The log reads like `docker build`: numbered steps, the RUN's own output, DONE.
  EXPECT_TRUE(b.Logged("[1/2] COPY busybox /bin/busybox")) << b.Joined();
  EXPECT_TRUE(b.Logged("marker-" + project)) << b.Joined();
  EXPECT_TRUE(b.Logged(" DONE ")) << b.Joined();
  EXPECT_TRUE(b.Logged("pushed " + b.result->image)) << b.Joined();
  for (const auto& line : b.log) EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
}

TEST_F(BuildkitBuildBackendTest, TwoPlatformsGiveOneIndexWithAnAmd64AndAnArm64Manifest) {
  const std::string project = Project("bk-multi");
  // COPY only: no RUN needs an arm64 emulator.
  Built b = Build(Context("multi", "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\"]\n"),
                  project, Config(), "linux/amd64,linux/arm64");
  ASSERT_TRUE(b.result.ok()) << b.result.status().ToString() << "\n" << b.Joined();

  Json index = Registry().Manifest(project, b.result->digest);
  ASSERT_TRUE(index.is_object()) << "no manifest at " << b.result->digest;
  ASSERT_TRUE(index["manifests"].is_array()) << index.dump();
  std::set<std::string> platforms;
  for (const Json& m : index["manifests"]) {
    if (!m.contains("platform")) continue;
    const Json& p = m["platform"];
    if (p.value("architecture", "") == "unknown") continue;  // attestation manifests
    platforms.insert(p.value("os", "") + "/" + p.value("architecture", ""));
    Json image = Registry().Manifest(project, m.value("digest", ""));
    EXPECT_TRUE(image.is_object() && image["config"].is_object())
        << "the " << p.dump() << " manifest is not in the registry";
  }
  EXPECT_EQ(platforms, (std::set<std::string>{"linux/amd64", "linux/arm64"})) << index.dump();
}

TEST_F(BuildkitBuildBackendTest, AfterPruneTheProjectImportsItsOwnRegistryCacheAndNoOtherProjectDoes) {
  const std::string a = Project("bk-cache-a");
  const std::string b = Project("bk-cache-b");
  const std::string dockerfile = HelloDockerfile("cache-" + a);  // the same for both projects

  const std::string marker = "cache-" + a;
  Built first = Build(Context("a1", dockerfile), a, Config());
  ASSERT_TRUE(first.result.ok()) << first.result.status().ToString() << "\n" << first.Joined();
  EXPECT_TRUE(first.Ran(marker)) << "a new RUN step cannot be cached\n" << first.Joined();
  EXPECT_TRUE(first.Logged("no cache imported")) << "the project's first build has no cache yet\n"
                                                 << first.Joined();

  auto prune = testing::PruneBuildkit();
  ASSERT_EQ(prune.exit_code, 0) << prune.output;
  Built again = Build(Context("a2", dockerfile), a, Config());
  ASSERT_TRUE(again.result.ok()) << again.result.status().ToString() << "\n" << again.Joined();
  EXPECT_GE(again.Count("CACHED"), 2) << "COPY and RUN come from the project's registry cache\n"
                                      << again.Joined();
  EXPECT_FALSE(again.Ran(marker)) << again.Joined();
  EXPECT_TRUE(again.Logged("importing cache manifest from " + std::string(kRegistry) +
                           "/slipway-test-cache:prj-" + a))
      << again.Joined();

  ASSERT_EQ(testing::PruneBuildkit().exit_code, 0);
  Built other = Build(Context("b1", dockerfile), b, Config());
  ASSERT_TRUE(other.result.ok()) << other.result.status().ToString() << "\n" << other.Joined();
  EXPECT_TRUE(other.Ran(marker)) << "project " << b << " used " << a << "'s cache\n"
                                 << other.Joined();
  EXPECT_FALSE(other.Logged("slipway-test-cache:prj-" + a)) << other.Joined();
}

TEST_F(BuildkitBuildBackendTest, RegistryThatWantsCredentialsTakesThemAndWithoutThemIsNamed) {
  AuthRegistry auth;
  const std::string project = Project("bk-auth");
  fs::path ctx = Context("auth", "FROM scratch\nCOPY busybox /bin/busybox\n");

  build::BuildBackendConfig without = Config();
  without.registry = auth.host();
  without.buildkit_cache = "none";
  Built refused = Build(ctx, project, without);
  ASSERT_FALSE(refused.result.ok()) << refused.result->image;
  EXPECT_NE(refused.result.status().message().find("registry " + auth.host()), std::string::npos)
      << refused.result.status().message();
  EXPECT_NE(refused.result.status().message().find("REGISTRY_USERNAME"), std::string::npos)
      << refused.result.status().message();
  EXPECT_FALSE(workflow::IsTransient(refused.result.status()));

  build::BuildBackendConfig with = without;
  with.registry_username = "builder";
  with.registry_password = "s3cret-pw";
  Built ok = Build(ctx, project, with);
  ASSERT_TRUE(ok.result.ok()) << ok.result.status().ToString() << "\n" << ok.Joined();
  Registry reg{auth.host(), "builder", "s3cret-pw"};
  auto head = reg.Get(project + "/manifests/t1");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers.GetOr("Docker-Content-Digest", ""), ok.result->digest);

  // The same credentials from a docker config.json.
  fs::path docker_config = tmp_.path() / "docker-config";
  WriteFile(docker_config / "config.json",
            Json{{"auths", {{"http://" + auth.host(), {{"auth", Base64Encode("builder:s3cret-pw")}}}}}}.dump());
  build::BuildBackendConfig from_file = without;
  from_file.docker_config = docker_config.string();
  Built ok2 = Build(ctx, project, from_file);
  EXPECT_TRUE(ok2.result.ok()) << ok2.result.status().ToString() << "\n" << ok2.Joined();
}

TEST_F(BuildkitBuildBackendTest, MutualTlsWorksWithOurCertificateAndRefusesAStrangersClearly) {
  const auto peer = Buildkit();
  const std::string project = Project("bk-tls");
  fs::path ctx = Context("tls", "FROM scratch\nCOPY busybox /bin/busybox\n");

  build::BuildBackendConfig tls = Config();
  tls.buildkit_host = peer.tls_host;
  tls.buildkit_tls_ca = peer.tls_ca;
  tls.buildkit_tls_cert = peer.tls_cert;
  tls.buildkit_tls_key = peer.tls_key;
  tls.buildkit_tls_server_name = "127.0.0.1";
  tls.buildkit_cache = "none";
  Built ok = Build(ctx, project, tls);
  EXPECT_TRUE(ok.result.ok()) << ok.result.status().ToString() << "\n" << ok.Joined();

  build::BuildBackendConfig rogue = tls;
  rogue.buildkit_tls_cert = peer.rogue_cert;
  rogue.buildkit_tls_key = peer.rogue_key;
  Built refused = Build(ctx, project, rogue);
  ASSERT_FALSE(refused.result.ok());
  const std::string& m = refused.result.status().message();
  EXPECT_NE(m.find("refused the TLS connection"), std::string::npos) << m;
  EXPECT_NE(m.find("BUILDKIT_TLS_CERT"), std::string::npos) << m;
  EXPECT_FALSE(workflow::IsTransient(refused.result.status())) << "a rejected certificate is terminal";

  build::BuildBackendConfig partial = tls;
  partial.buildkit_tls_key.clear();
  Built bad_config = Build(ctx, project, partial);
  ASSERT_FALSE(bad_config.result.ok());
  EXPECT_EQ(bad_config.result.status().code(), Code::kInvalidArgument);
}

TEST_F(BuildkitBuildBackendTest, FailuresAreOneLineThatSaysWhatHappened) {
  const std::string project = Project("bk-fail");
  build::BuildBackendConfig config = Config();
  config.buildkit_cache = "none";

  Built run = Build(Context("run", "FROM scratch\nCOPY busybox /bin/busybox\n"
                                   "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo compiling; echo broken-widget >&2; exit 3\"]\n"),
                    project, config);
  ASSERT_FALSE(run.result.ok());
  std::string m = run.result.status().message();
  EXPECT_NE(m.find("[2/2] RUN"), std::string::npos) << m;
  EXPECT_NE(m.find("exit code: 3"), std::string::npos) << m;
  EXPECT_NE(m.find("broken-widget"), std::string::npos) << "the step's last output\n" << m;
  EXPECT_FALSE(workflow::IsTransient(run.result.status()));
  EXPECT_TRUE(run.Logged("broken-widget")) << run.Joined();

  fs::path nodockerfile = Context("nodf", "FROM scratch\n");
  build::BuildBackendConfig c2 = config;
  auto backend = build::MakeBuildBackend(c2);
  ASSERT_TRUE(backend.ok());
  {
    build::BuildRequest req;
    req.build_id = "bld_nodf";
    req.project = project;
    req.project_id = "prj-nodf";
    req.context_url = s3_.StoreContext(nodockerfile, tmp_.path(), project);
    req.dockerfile = "deploy/Dockerfile";
    req.image_name = project + ":t1";
    auto r = (*backend)->Build(req, [](std::string_view) {});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("no Dockerfile at \"deploy/Dockerfile\""), std::string::npos)
        << r.status().message();
  }

  Built base = Build(Context("base", "FROM 127.0.0.1:5000/slipway-test/no-such-base:1\nCMD [\"x\"]\n"),
                     project, config);
  ASSERT_FALSE(base.result.ok());
  m = base.result.status().message();
  EXPECT_NE(m.find("the base image 127.0.0.1:5000/slipway-test/no-such-base:1"), std::string::npos) << m;
  EXPECT_FALSE(workflow::IsTransient(base.result.status()));

  build::BuildBackendConfig gone = config;
  gone.buildkit_host = "unix://" + (tmp_.path() / "no-buildkitd.sock").string();
  Built unreachable = Build(Context("gone", "FROM scratch\n"), project, gone);
  ASSERT_FALSE(unreachable.result.ok());
  EXPECT_EQ(unreachable.result.status().code(), Code::kUnavailable)
      << unreachable.result.status().ToString();
  EXPECT_TRUE(workflow::IsTransient(unreachable.result.status())) << "unreachable is retried";
  EXPECT_NE(unreachable.result.status().message().find("cannot reach BuildKit"), std::string::npos);

  build::BuildBackendConfig no_registry = config;
  no_registry.registry.clear();
  auto refused = build::MakeBuildBackend(no_registry);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("set REGISTRY"), std::string::npos);
}

TEST_F(BuildkitBuildBackendTest, CancelStopsTheSolveOnTheDaemon) {
  const std::string project = Project("bk-cancel");
  build::BuildBackendConfig config = Config();
  config.buildkit_cache = "none";
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(1500ms);
    cancel = true;
  });
  auto start = std::chrono::steady_clock::now();
  Built b = Build(Context("slow", "FROM scratch\nCOPY busybox /bin/busybox\n"
                                  "RUN [\"/bin/busybox\", \"sleep\", \"60\"]\n"),
                  project, config, "", "", &cancel);
  canceller.join();
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(b.result.ok());
  EXPECT_EQ(b.result.status().code(), Code::kCanceled) << b.result.status().ToString();
  EXPECT_LT(took, 20s) << "the build was not stopped";
}

}  // namespace
}  // namespace slipway::ctrl::test
