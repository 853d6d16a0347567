// BuildBackend: turns a source context in object storage into a container image.
//
// Implementations: docker/ (Docker Engine API; local daemon), and later depot/ and buildkit/.
// MakeBuildBackend() picks one from configuration (BUILD_BACKEND). A backend never receives the
// context bytes from ctrl: it is handed a presigned GET URL and fetches the archive itself.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
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
  std::string project;
  std::string context_url;   // presigned GET of contexts/<project>/<sha256>.tar.gz, serving
                             // Content-Type kContextContentType
  std::string dockerfile = "Dockerfile";
  std::map<std::string, std::string> build_args;
  std::string platform;      // "linux/amd64"; empty: the backend's default
  std::string image_name;    // repository and tag without registry: "<project>:<tag>"
};

struct BuildResult {
  std::string image;     // what krane should run: "127.0.0.1:5000/app:dep_x" or "app:dep_x"
  std::string image_id;  // "sha256:..." when the backend knows it
  std::string digest;    // registry digest when pushed
};

// Receives one line of build output at a time (no trailing newline), in order.
using BuildLogSink = std::function<void(std::string_view line)>;

class BuildBackend {
 public:
  virtual ~BuildBackend() = default;
  virtual std::string_view name() const = 0;
  // Builds (and pushes, when configured). A failed build is an error Status whose message is
  // the builder's own (e.g. the Dockerfile parse error); log lines arrive through `log` as the
  // builder emits them. Setting *cancel stops waiting and returns Canceled.
  virtual Result<BuildResult> Build(const BuildRequest& request, const BuildLogSink& log,
                                    const std::atomic<bool>* cancel = nullptr) = 0;
};

struct BuildBackendConfig {
  std::string backend = "docker";          // BUILD_BACKEND
  std::string docker_host = "unix:///var/run/docker.sock";  // DOCKER_HOST
  std::string registry;                    // REGISTRY: "127.0.0.1:5000"; empty keeps images local
  // DOCKER_BUILDER, docker backend only: "buildkit" (version=2), "classic" (version=1), or
  // "auto": BuildKit, and the classic builder from then on if the daemon refuses BuildKit.
  std::string docker_builder = "auto";
  std::string platform = "linux/amd64";    // BUILD_PLATFORM
};

Result<std::unique_ptr<BuildBackend>> MakeBuildBackend(const BuildBackendConfig& config);

}  // namespace slipway::ctrl::build
