#include "ctrl/build/buildkit/buildkit_backend.h"

#include <fmt/format.h>

#include "base/crypto.h"
#include "ctrl/build/buildkit/connection.h"
#include "ctrl/build/buildkit/registry_credentials.h"
#include "ctrl/build/buildkit/solve.h"
#include "net/http_client.h"

namespace slipway::ctrl::build::buildkit {
namespace {

class BuildkitBackend : public BuildBackend {
 public:
  BuildkitBackend(BuildBackendConfig config, BuildkitEndpoint endpoint,
                  std::shared_ptr<grpc::Channel> channel, RegistryCredentials credentials)
      : config_(std::move(config)),
        endpoint_(std::move(endpoint)),
        channel_(std::move(channel)),
        credentials_(std::move(credentials)) {}

  std::string_view name() const override { return "buildkit"; }

  // The pinned image's manifest is still in the registry ("host/repo:tag@sha256:...").
  bool ImageExists(const std::string& image) override {
    const size_t at = image.find('@');
    const std::string host = RegistryHostOf(image);
    if (at == std::string::npos || host.empty() || image.size() <= host.size() + 1) return false;
    std::string repo = image.substr(host.size() + 1, at - host.size() - 1);
    if (size_t colon = repo.rfind(':'); colon != std::string::npos) repo = repo.substr(0, colon);
    const bool plain = host.rfind("127.", 0) == 0 || host.rfind("localhost", 0) == 0;
    net::ClientRequest req;
    req.method = "HEAD";
    req.url = fmt::format("{}://{}/v2/{}/manifests/{}", plain ? "http" : "https", host, repo,
                          image.substr(at + 1));
    req.headers.Set("Accept",
                    "application/vnd.oci.image.index.v1+json, "
                    "application/vnd.docker.distribution.manifest.list.v2+json, "
                    "application/vnd.oci.image.manifest.v1+json, "
                    "application/vnd.docker.distribution.manifest.v2+json");
    if (auto c = credentials_.For(host)) {
      req.headers.Set("Authorization", "Basic " + Base64Encode(c->username + ":" + c->secret));
    }
    req.timeout = std::chrono::seconds(10);
    auto resp = http_.Do(req);
    return resp.ok() && resp->status == 200;
  }

  Result<BuildResult> Build(const BuildRequest& request, const BuildLogSink& log,
                            const std::atomic<bool>* cancel) override {
    SolveSpec spec;
    spec.build_id = request.build_id;
    spec.context_url = request.context_url;
    spec.dockerfile = request.dockerfile;
    spec.target = request.target;
    spec.no_cache = request.no_cache;
    spec.build_args = request.build_args;
    spec.platforms = request.platform.empty() ? config_.platform : request.platform;
    spec.image = config_.registry + "/" + request.image_name;
    if (config_.buildkit_cache == "registry") {
      spec.cache_ref = CacheRef(config_.registry, config_.buildkit_cache_repository,
                                request.project_id.empty() ? request.project : request.project_id);
    }
    SolveTarget target{channel_, endpoint_.host, !endpoint_.tls_ca.empty(), &credentials_};
    return Solve(target, spec, log, cancel);
  }

 private:
  BuildBackendConfig config_;
  BuildkitEndpoint endpoint_;
  std::shared_ptr<grpc::Channel> channel_;
  RegistryCredentials credentials_;
  net::HttpClient http_;
};

}  // namespace

std::string CacheRef(const std::string& registry, const std::string& repository,
                     const std::string& project_id) {
  std::string tag;
  for (char c : project_id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    tag += ok ? c : '-';
  }
  return fmt::format("{}/{}:{}", registry, repository, tag.substr(0, 128));
}

Result<std::unique_ptr<BuildBackend>> MakeBuildkitBackend(const BuildBackendConfig& config) {
  if (config.registry.empty()) {
    return Status::InvalidArgument(
        "the buildkit backend pushes every image to a registry the instances pull from: set "
        "REGISTRY (e.g. 127.0.0.1:5000)");
  }
  if (config.buildkit_cache != "registry" && config.buildkit_cache != "none") {
    return Status::InvalidArgument("BUILDKIT_CACHE \"" + config.buildkit_cache +
                                   "\" is not one of registry, none");
  }
  SLIPWAY_ASSIGN_OR_RETURN(
      BuildkitEndpoint endpoint,
      LoadEndpoint(config.buildkit_host, config.buildkit_tls_ca, config.buildkit_tls_cert,
                   config.buildkit_tls_key, config.buildkit_tls_server_name));
  SLIPWAY_ASSIGN_OR_RETURN(auto channel, Dial(endpoint));
  SLIPWAY_ASSIGN_OR_RETURN(
      RegistryCredentials credentials,
      RegistryCredentials::Load(config.registry, config.registry_username,
                                config.registry_password, config.docker_config));
  return std::unique_ptr<BuildBackend>(std::make_unique<BuildkitBackend>(
      config, std::move(endpoint), std::move(channel), std::move(credentials)));
}

}  // namespace slipway::ctrl::build::buildkit
