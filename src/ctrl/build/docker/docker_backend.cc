#include "ctrl/build/docker/docker_backend.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "ctrl/build/docker/build_output.h"
#include "net/http_client.h"

namespace slipway::ctrl::build::docker {
namespace {

using Json = nlohmann::json;

// The Engine API version we speak: dockerd 20.10 (Debian 12) serves 1.41.
constexpr std::string_view kApiVersion = "v1.41";

// Where the daemon listens: a unix socket path, or a TCP base URL.
struct DaemonAddress {
  std::string unix_socket;
  std::string base_url;
};

Result<DaemonAddress> ParseDockerHost(const std::string& host) {
  if (host.rfind("unix://", 0) == 0) {
    return DaemonAddress{host.substr(7), "http://docker"};
  }
  if (host.rfind("tcp://", 0) == 0) return DaemonAddress{"", "http://" + host.substr(6)};
  if (host.rfind("http://", 0) == 0) return DaemonAddress{"", host};
  return Status::InvalidArgument("DOCKER_HOST \"" + host +
                                 "\" is neither unix:///path nor tcp://host:port");
}

class DockerBackend : public BuildBackend {
 public:
  DockerBackend(BuildBackendConfig config, DaemonAddress daemon)
      : config_(std::move(config)), daemon_(std::move(daemon)) {}

  std::string_view name() const override { return "docker"; }

  bool ImageExists(const std::string& image) override {
    auto resp = http_.Do(DaemonRequest("GET", "/images/" + net::UriEncode(image, false) + "/json"));
    return resp.ok() && resp->status == 200;
  }

  Result<BuildResult> Build(const BuildRequest& request, const BuildLogSink& log,
                            const std::atomic<bool>* cancel) override {
    const std::string image = config_.registry.empty()
                                  ? request.image_name
                                  : config_.registry + "/" + request.image_name;
    SLIPWAY_ASSIGN_OR_RETURN(std::string image_id, RunBuild(request, image, log, cancel));
    BuildResult result{image, image_id, ""};
    if (!config_.registry.empty()) {
      SLIPWAY_ASSIGN_OR_RETURN(result.digest, Push(image, log, cancel));
    }
    return result;
  }

 private:
  net::ClientRequest DaemonRequest(std::string method, std::string path_and_query) const {
    net::ClientRequest req;
    req.method = std::move(method);
    req.unix_socket = daemon_.unix_socket;
    req.url = fmt::format("{}/{}{}", daemon_.base_url, kApiVersion, path_and_query);
    req.connect_timeout = std::chrono::seconds(5);
    // A RUN step may print nothing for a long time; only a daemon silent for this long is dead.
    req.low_speed_timeout = std::chrono::minutes(30);
    req.idempotent = false;
    return req;
  }

  // Streams one daemon call's JSON-lines output through a decoder; returns the decoder's
  // verdict as a Status (transport, HTTP and in-stream errors alike).
  // *http_status (when given) receives the daemon's HTTP status, 0 if it never answered.
  Status StreamCall(net::ClientRequest req, BuildOutputDecoder& decoder,
                    const std::atomic<bool>* cancel, std::string_view what,
                    int* http_status = nullptr) {
    req.on_body = [&](std::string_view chunk) {
      if (cancel != nullptr && cancel->load()) return false;
      decoder.Feed(chunk);
      return true;
    };
    // A step that prints nothing for a while (a long RUN) must still be stoppable: dropping the
    // connection makes dockerd cancel the build.
    if (cancel != nullptr) req.cancelled = [cancel] { return cancel->load(); };
    auto resp = http_.Do(req);
    decoder.Finish();
    if (http_status != nullptr) *http_status = resp.ok() ? resp->status : 0;
    if (cancel != nullptr && cancel->load()) return Status::Canceled(std::string(what) + " was canceled");
    if (!resp.ok()) {
      return resp.status().WithContext(fmt::format(
          "{} through dockerd at {} failed (is dockerd running? scripts/services.sh starts it)",
          what, config_.docker_host));
    }
    if (decoder.error()) return Status::FailedPrecondition(*decoder.error());
    if (resp->status != 200) {
      return Status::FailedPrecondition(fmt::format("{} failed: dockerd answered HTTP {}", what,
                                                    resp->status));
    }
    return Status::Ok();
  }

  Result<std::string> RunBuild(const BuildRequest& request, const std::string& image,
                               const BuildLogSink& log, const std::atomic<bool>* cancel) {
    Json build_args = Json::object();
    for (const auto& [k, v] : request.build_args) build_args[k] = v;
    const std::string platform = request.platform.empty() ? config_.platform : request.platform;
    if (platform.find(',') != std::string::npos) {
      return Status::InvalidArgument(fmt::format(
          "the docker backend builds one platform at a time and \"{}\" names several: build "
          "multi-platform images with the buildkit backend (BUILD_BACKEND=buildkit)",
          platform));
    }
    std::string query = fmt::format(
        "/build?remote={}&t={}&dockerfile={}&buildargs={}&platform={}&networkmode=host&rm=1"
        "&forcerm=1",
        net::UriEncode(request.context_url), net::UriEncode(image),
        net::UriEncode(request.dockerfile.empty() ? "Dockerfile" : request.dockerfile),
        net::UriEncode(build_args.dump()), net::UriEncode(platform));
    if (!request.target.empty()) query += "&target=" + net::UriEncode(request.target);
    if (request.no_cache) query += "&nocache=1";

    // Every BuildKit failure, a bad Dockerfile included, is an HTTP 200 stream ending in
    // errorDetail; an HTTP error status means the daemon refused BuildKit itself (an old or
    // experimental-only daemon: "buildkit is only supported with experimental mode"). Only
    // then, and only in "auto", is the classic builder used, for this build and the next ones.
    const bool buildkit = config_.docker_builder == "buildkit" ||
                          (config_.docker_builder != "classic" && !buildkit_refused_.load());
    if (buildkit) {
      BuildOutputDecoder decoder(log);
      int http_status = 0;
      Status st = StreamCall(DaemonRequest("POST", query + "&version=2"), decoder, cancel,
                             "building " + image, &http_status);
      if (st.ok() || config_.docker_builder == "buildkit" || http_status == 0 ||
          http_status == 200) {
        return BuiltImageId(st, decoder, request, image);
      }
      spdlog::info("dockerd refused a BuildKit build ({}); using the classic builder",
                   st.message());
      buildkit_refused_ = true;
    }
    BuildOutputDecoder decoder(log);
    Status st = StreamCall(DaemonRequest("POST", query + "&version=1"), decoder, cancel,
                           "building " + image);
    if (!st.ok() && !request.no_cache && LostCachedLayer(st)) {
      // The classic builder found a step in its cache, then the image was gone when it used
      // it: something (an image prune, another build's cleanup) removed it in between. Such a
      // build is not wrong; it is built again without the cache.
      spdlog::warn("building {}: a cached layer was removed mid-build ({}); building again "
                   "without the cache", image, st.message());
      BuildOutputDecoder again(log);
      st = StreamCall(DaemonRequest("POST", query + "&nocache=1&version=1"), again, cancel,
                      "building " + image);
      return BuiltImageId(st, again, request, image);
    }
    return BuiltImageId(st, decoder, request, image);
  }

  static bool LostCachedLayer(const Status& st) {
    return st.message().find("unable to find image \"sha256:") != std::string::npos;
  }

  // The image id a finished build reported, or why there is none.
  static Result<std::string> BuiltImageId(const Status& st, const BuildOutputDecoder& decoder,
                                          const BuildRequest& request, const std::string& image) {
    if (!st.ok()) return ExplainMissingDockerfile(st, request);
    if (decoder.image_id().empty()) {
      return Status::Internal("dockerd reported success but no image id for " + image);
    }
    return decoder.image_id();
  }

  // BuildKit says "failed to read dockerfile: open /var/lib/docker/tmp/buildkit-mount.../X: no
  // such file or directory", the classic builder "Cannot locate specified Dockerfile: X": both
  // become a message naming the path in the context and what to do, the builder's words kept.
  static Status ExplainMissingDockerfile(const Status& st, const BuildRequest& request) {
    const std::string& m = st.message();
    const bool missing = m.find("Cannot locate specified Dockerfile") != std::string::npos ||
                         (m.find("failed to read dockerfile") != std::string::npos &&
                          m.find("no such file or directory") != std::string::npos);
    if (!missing) return st;
    return Status(st.code(),
                  fmt::format("no Dockerfile at \"{}\" in the uploaded context (pass the "
                              "Dockerfile's path inside the context with --dockerfile); the "
                              "builder said: {}",
                              request.dockerfile.empty() ? "Dockerfile" : request.dockerfile, m));
  }

  Result<std::string> Push(const std::string& image, const BuildLogSink& log,
                           const std::atomic<bool>* cancel) {
    size_t colon = image.rfind(':');
    std::string repo = image.substr(0, colon);
    std::string tag = image.substr(colon + 1);
    auto req = DaemonRequest("POST", fmt::format("/images/{}/push?tag={}", net::UriEncode(repo),
                                                 net::UriEncode(tag)));
    // dockerd insists on a non-empty auth header even for an open registry: "{}" in base64.
    req.headers.Set("X-Registry-Auth", "e30=");
    BuildOutputDecoder decoder(log);
    SLIPWAY_RETURN_IF_ERROR(StreamCall(std::move(req), decoder, cancel, "pushing " + image));
    if (decoder.pushed_digest().empty()) {
      return Status::Internal("dockerd finished pushing " + image + " without reporting a digest");
    }
    return decoder.pushed_digest();
  }

  BuildBackendConfig config_;
  DaemonAddress daemon_;
  net::HttpClient http_;
  std::atomic<bool> buildkit_refused_{false};  // "auto" learned that dockerd has no BuildKit
};

}  // namespace

Result<std::unique_ptr<BuildBackend>> MakeDockerBackend(const BuildBackendConfig& config) {
  SLIPWAY_ASSIGN_OR_RETURN(DaemonAddress daemon, ParseDockerHost(config.docker_host));
  if (config.docker_builder != "auto" && config.docker_builder != "buildkit" &&
      config.docker_builder != "classic") {
    return Status::InvalidArgument("DOCKER_BUILDER \"" + config.docker_builder +
                                   "\" is not one of auto, buildkit, classic");
  }
  return std::unique_ptr<BuildBackend>(std::make_unique<DockerBackend>(config, daemon));
}

}  // namespace slipway::ctrl::build::docker
