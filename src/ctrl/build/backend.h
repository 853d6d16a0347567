// BuildBackend: turns a source context in object storage into a container image.
//
// Implementations: docker/ (Docker Engine API; local daemon), buildkit/ (a BuildKit daemon over
// its gRPC API), and depot/ (a BuildKit machine Depot provisions per build).
// MakeBuildBackend() picks one from configuration (BUILD_BACKEND). A backend never receives the
// context bytes from ctrl: it is handed a presigned GET URL and fetches the archive itself.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace slipway::ctrl::build {

// What a context URL must answer with. An object uploaded without a Content-Type is served as
// S3's default "binary/octet-stream", which dockerd's classic builder refuses ("unsupported
// Content-Type"), so the presigned GET overrides it.
inline constexpr std::string_view kContextContentType = "application/gzip";

struct BuildRequest {
  std::string build_id;
  std::string project;       // the project's name
  std::string project_id;    // its id: keys what belongs to the project alone (layer cache)
  std::string context_url;   // presigned GET of contexts/<project>/<sha256>.tar.gz, serving
                             // Content-Type kContextContentType
  std::string dockerfile = "Dockerfile";
  std::map<std::string, std::string> build_args;
  std::string platform;      // "linux/amd64", or a comma list for one multi-platform image;
                             // empty: the backend's default
  std::string target;        // Dockerfile stage to build; empty: the last stage
  bool no_cache = false;     // run every step again, whatever the builder has cached
  std::string image_name;    // repository and tag without registry: "<project>:<tag>"
};

struct BuildResult {
  // What krane should run: "app:dep_x", "127.0.0.1:5000/app:dep_x", or pinned by digest
  // "127.0.0.1:5000/app:dep_x@sha256:..." when the backend knows what it pushed.
  std::string image;
  std::string image_id;  // "sha256:..." when the backend knows it
  std::string digest;    // registry digest when pushed
};

// Receives one line of build output at a time (no trailing newline), in order.
using BuildLogSink = std::function<void(std::string_view line)>;

// What a runtime needs to pull an image from a registry that wants credentials.
struct PullCredentials {
  std::string server;  // the registry host
  std::string username;
  std::string password;
};

class BuildBackend {
 public:
  virtual ~BuildBackend() = default;
  virtual std::string_view name() const = 0;
  // Builds (and pushes, when configured). A failed build is an error Status whose message is
  // the builder's own (e.g. the Dockerfile parse error); log lines arrive through `log` as the
  // builder emits them. Setting *cancel stops waiting and returns Canceled.
  virtual Result<BuildResult> Build(const BuildRequest& request, const BuildLogSink& log,
                                    const std::atomic<bool>* cancel = nullptr) = 0;
  // Whether an image this backend built earlier (BuildResult::image) can still be run, so an
  // unchanged source is deployed without building again. False when unsure.
  virtual bool ImageExists(const std::string& image) { return false; }
  // The credentials krane needs to pull an image this backend built; nullopt: anonymous.
  virtual std::optional<PullCredentials> PullCredentialsFor(const std::string& image) const {
    return std::nullopt;
  }
};

struct BuildBackendConfig {
  std::string backend = "docker";          // BUILD_BACKEND
  std::string docker_host = "unix:///var/run/docker.sock";  // DOCKER_HOST
  std::string registry;                    // REGISTRY: "127.0.0.1:5000"; empty keeps images local
  // DOCKER_BUILDER, docker backend only: "buildkit" (version=2), "classic" (version=1), or
  // "auto": BuildKit, and the classic builder from then on if the daemon refuses BuildKit.
  std::string docker_builder = "auto";
  std::string platform = "linux/amd64";    // BUILD_PLATFORM: one, or a comma list (buildkit)

  // buildkit backend
  std::string buildkit_host = "unix:///run/buildkit/buildkitd.sock";  // BUILDKIT_HOST
  std::string buildkit_tls_ca;           // BUILDKIT_TLS_CA: PEM file; with _CERT and _KEY: mTLS
  std::string buildkit_tls_cert;         // BUILDKIT_TLS_CERT
  std::string buildkit_tls_key;          // BUILDKIT_TLS_KEY
  std::string buildkit_tls_server_name;  // BUILDKIT_TLS_SERVER_NAME; default: BUILDKIT_HOST's host
  std::string buildkit_cache = "registry";  // BUILDKIT_CACHE: registry (per project) or none
  std::string buildkit_cache_repository = "slipway-cache";  // BUILDKIT_CACHE_REPOSITORY
  // Registry credentials for pushes: REGISTRY_USERNAME / REGISTRY_PASSWORD (for REGISTRY), and
  // the "auths" of DOCKER_CONFIG/config.json (default ~/.docker).
  std::string registry_username;
  std::string registry_password;
  std::string docker_config;

  // depot backend
  std::string depot_token;                              // DEPOT_TOKEN: an organization token
  std::string depot_api_url = "https://api.depot.dev";  // DEPOT_API_URL
  std::string depot_org;     // DEPOT_ORG: the organization id, for a token of several orgs
  std::string depot_region = "us-east-1";               // DEPOT_REGION: of new Depot projects
  int depot_cache_keep_gb = 50;                         // DEPOT_CACHE_KEEP_GB
  int depot_cache_keep_days = 14;                       // DEPOT_CACHE_KEEP_DAYS
  std::string depot_registry = "registry.depot.dev";    // DEPOT_REGISTRY
  std::chrono::milliseconds depot_machine_timeout{5 * 60 * 1000};  // DEPOT_MACHINE_TIMEOUT
};

namespace depot {
class DepotRecords;
}

// depot_records: where the depot backend keeps its Depot project ids and open Depot builds
// (ctrl's database); required by BUILD_BACKEND=depot, unused by the others.
Result<std::unique_ptr<BuildBackend>> MakeBuildBackend(const BuildBackendConfig& config,
                                                       depot::DepotRecords* depot_records = nullptr);

}  // namespace slipway::ctrl::build
