#include "ctrl/build/depot/depot_backend.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "base/duration.h"
#include "ctrl/build/buildkit/connection.h"
#include "ctrl/build/buildkit/registry_credentials.h"
#include "ctrl/build/buildkit/solve.h"
#include "depot/cli/v1/build.pb.h"
#include "depot/core/v1/project.pb.h"
#include "net/connect.h"

namespace slipway::ctrl::build::depot {
namespace {

namespace corev1 = ::depot::core::v1;
namespace cliv1 = ::depot::cli::v1;

constexpr std::string_view kProjectService = "depot.core.v1.ProjectService";
constexpr std::string_view kBuildService = "depot.cli.v1.BuildService";
// Depot removes a machine nobody reports health for; depot-go reports every 5 s.
constexpr std::chrono::seconds kHealthInterval{5};
// How long FinishBuild is retried when Depot does not answer: the outcome is worth a few seconds.
constexpr int kFinishAttempts = 3;

// Depot's answer as a sentence for whoever reads the build's error, with a code the workflow
// acts on: a refused token is terminal at once, an unreachable Depot is worth retrying.
Status DepotError(const Status& st, std::string_view doing, const std::string& api_url,
                  bool build_token) {
  switch (st.code()) {
    case Code::kUnauthenticated:
    case Code::kPermissionDenied:
      if (build_token) {
        return Status::PermissionDenied(fmt::format(
            "Depot refused the build token it gave this build while {} ({}); the build is not "
            "retried: check that DEPOT_API_URL ({}) is the Depot that registered it",
            doing, st.message(), api_url));
      }
      return Status::PermissionDenied(
          fmt::format("Depot refused the token in DEPOT_TOKEN while {} ({}): set DEPOT_TOKEN to an "
                      "organization token of your Depot organization (Depot: Settings, API tokens)",
                      doing, st.message()));
    case Code::kUnavailable:
    case Code::kDeadlineExceeded:
    case Code::kResourceExhausted:
      return Status::Unavailable(
          fmt::format("Depot's API at {} did not answer while {} ({}); the build is tried again",
                      api_url, doing, st.message()));
    default:
      return Status(st.code(), fmt::format("Depot failed {}: {}", doing, st.message()));
  }
}

bool DepotDidNotAnswer(const Status& st) {
  return st.code() == Code::kUnavailable || st.code() == Code::kDeadlineExceeded;
}

cliv1::BuilderPlatform BuilderPlatformOf(std::string_view platform) {
  const bool arm = platform.find("arm") != std::string_view::npos ||
                   platform.find("aarch") != std::string_view::npos;
  return arm ? cliv1::BUILDER_PLATFORM_ARM64 : cliv1::BUILDER_PLATFORM_AMD64;
}

// Tells Depot every 5 s that the build's machine is still in use, from a thread of its own,
// from construction until destruction: every way out of a build stops it.
class HealthReporter {
 public:
  HealthReporter(const net::ConnectClient& build_api, std::string build_id,
                 cliv1::BuilderPlatform platform)
      : build_api_(build_api),
        thread_([this, id = std::move(build_id), platform] { Run(id, platform); }) {}
  ~HealthReporter() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Run(const std::string& build_id, cliv1::BuilderPlatform platform) {
    cliv1::ReportBuildHealthRequest req;
    req.set_build_id(build_id);
    req.set_platform(platform);
    std::unique_lock lock(mu_);
    while (!stopped_) {
      lock.unlock();
      Status st = build_api_.CallUnary(net::ConnectProcedure(kBuildService, "ReportBuildHealth"),
                                       req, nullptr);
      if (!st.ok()) {
        spdlog::warn("depot: health report for build {} failed: {}", build_id, st.message());
      }
      lock.lock();
      cv_.wait_for(lock, kHealthInterval, [this] { return stopped_; });
    }
  }

  const net::ConnectClient& build_api_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

class DepotBackend : public BuildBackend {
 public:
  DepotBackend(BuildBackendConfig config, DepotRecords* records)
      : config_(std::move(config)), records_(records), org_api_(ApiOptions(config_.depot_token)) {
    credentials_.Set(config_.depot_registry, {"x-token", config_.depot_token});
  }

  std::string_view name() const override { return "depot"; }

  // Depot's registry takes the same token for pulls (user x-token).
  std::optional<PullCredentials> PullCredentialsFor(const std::string& image) const override {
    if (image.rfind(config_.depot_registry + "/", 0) != 0) return std::nullopt;
    return PullCredentials{config_.depot_registry, "x-token", config_.depot_token};
  }

  Result<BuildResult> Build(const BuildRequest& request, const BuildLogSink& log,
                            const std::atomic<bool>* cancel) override {
    const std::string project_id =
        request.project_id.empty() ? request.project : request.project_id;
    SLIPWAY_ASSIGN_OR_RETURN(std::string depot_project, EnsureDepotProject(project_id, log));
    SLIPWAY_RETURN_IF_ERROR(FinishLeftOpen(request.build_id, log));

    cliv1::CreateBuildRequest create;
    create.set_project_id(depot_project);
    auto registered = org_api_.Call<cliv1::CreateBuildResponse>(
        net::ConnectProcedure(kBuildService, "CreateBuild"), create);
    if (!registered.ok()) {
      return DepotError(registered.status(), "registering the build", config_.depot_api_url, false);
    }
    const OpenDepotBuild open{registered->build_id(), registered->build_token()};
    log(fmt::format("depot: build {} registered in Depot project {}", open.build_id,
                    depot_project));
    net::ConnectClient build_api(ApiOptions(open.build_token));

    Status recorded = records_->SetOpenDepotBuild(request.build_id, open);
    Result<BuildResult> result = recorded.ok() ? BuildOnMachine(build_api, open.build_id,
                                                                depot_project, request, log, cancel)
                                               : Result<BuildResult>(recorded);

    Status finished = FinishOnDepot(build_api, open.build_id, result.status());
    if (finished.ok()) {
      (void)records_->SetOpenDepotBuild(request.build_id, {});
    } else {
      // Recorded still open: the next attempt of this build finishes it.
      spdlog::warn("depot: build {} could not be finished on Depot: {}", open.build_id,
                   finished.message());
    }
    return result;
  }

 private:
  net::ConnectClient::Options ApiOptions(const std::string& token) const {
    net::ConnectClient::Options o;
    o.base_url = config_.depot_api_url;
    o.binary = true;  // as Depot's own Go clients speak
    o.bearer_token = token;
    o.timeout = std::chrono::seconds(30);
    if (!config_.depot_org.empty()) o.headers.Add("x-depot-org", config_.depot_org);
    return o;
  }

  // One Depot project per project of ours, never two: builds of one project wait here for each
  // other, and Depot is searched by name before a project is created there.
  Result<std::string> EnsureDepotProject(const std::string& project_id, const BuildLogSink& log) {
    std::lock_guard lock(ProjectLock(project_id));
    SLIPWAY_ASSIGN_OR_RETURN(std::string known, records_->DepotProjectOf(project_id));
    if (!known.empty()) return known;

    const std::string name = DepotProjectName(project_id);
    SLIPWAY_ASSIGN_OR_RETURN(std::string depot_project, FindDepotProject(name));
    if (depot_project.empty()) {
      corev1::CreateProjectRequest req;
      req.set_name(name);
      req.set_region_id(config_.depot_region);
      if (!config_.depot_org.empty()) req.set_organization_id(config_.depot_org);
      req.mutable_cache_policy()->set_keep_gb(config_.depot_cache_keep_gb);
      req.mutable_cache_policy()->set_keep_days(config_.depot_cache_keep_days);
      auto created = org_api_.Call<corev1::CreateProjectResponse>(
          net::ConnectProcedure(kProjectService, "CreateProject"), req);
      if (!created.ok()) {
        return DepotError(created.status(), "creating the Depot project " + name,
                          config_.depot_api_url, false);
      }
      depot_project = created->project().project_id();
      log(fmt::format("depot: created Depot project {} ({})", depot_project, name));
    } else {
      log(fmt::format("depot: found Depot project {} ({})", depot_project, name));
    }
    return records_->RecordDepotProject(project_id, depot_project);
  }

  std::mutex& ProjectLock(const std::string& project_id) {
    std::lock_guard lock(locks_mu_);
    std::unique_ptr<std::mutex>& m = project_locks_[project_id];
    if (!m) m = std::make_unique<std::mutex>();
    return *m;
  }

  // The id of the Depot project of that name; empty when there is none.
  Result<std::string> FindDepotProject(const std::string& name) {
    corev1::ListProjectsRequest req;
    for (int page = 0; page < 1000; ++page) {
      auto listed = org_api_.Call<corev1::ListProjectsResponse>(
          net::ConnectProcedure(kProjectService, "ListProjects"), req);
      if (!listed.ok()) {
        return DepotError(listed.status(), "listing Depot projects", config_.depot_api_url, false);
      }
      for (const auto& p : listed->projects()) {
        if (p.name() == name) return p.project_id();
      }
      if (listed->next_page_token().empty()) break;
      req.set_page_token(listed->next_page_token());
    }
    return std::string();
  }

  // A Depot build an earlier attempt of this build opened and never finished (its ctrl died):
  // finished as canceled, so Depot never waits for it.
  Status FinishLeftOpen(const std::string& build_id, const BuildLogSink& log) {
    SLIPWAY_ASSIGN_OR_RETURN(OpenDepotBuild left, records_->OpenDepotBuildOf(build_id));
    if (left.build_id.empty()) return Status::Ok();
    net::ConnectClient build_api(ApiOptions(left.build_token));
    Status st = FinishOnDepot(build_api, left.build_id,
                              Status::Canceled("an earlier attempt of this build was interrupted"));
    // Depot refusing the old token (it expired) leaves nothing to do for it either.
    if (!st.ok() && st.code() == Code::kUnavailable) return st;
    log(fmt::format("depot: finished Depot build {} left open by an interrupted attempt",
                    left.build_id));
    return records_->SetOpenDepotBuild(build_id, {});
  }

  Status FinishOnDepot(const net::ConnectClient& build_api, const std::string& depot_build,
                       const Status& outcome) {
    cliv1::FinishBuildRequest req;
    req.set_build_id(depot_build);
    if (outcome.ok()) {
      req.mutable_success();
    } else if (outcome.code() == Code::kCanceled) {
      req.mutable_canceled();
    } else {
      req.mutable_error()->set_error(outcome.message());
    }
    Status st;
    for (int attempt = 1; attempt <= kFinishAttempts; ++attempt) {
      st = build_api.CallUnary(net::ConnectProcedure(kBuildService, "FinishBuild"), req, nullptr);
      if (st.ok() || !DepotDidNotAnswer(st)) break;
      std::this_thread::sleep_for(std::chrono::seconds(attempt));
    }
    return st.ok() ? st : DepotError(st, "finishing the build", config_.depot_api_url, true);
  }

  Result<BuildResult> BuildOnMachine(const net::ConnectClient& build_api,
                                     const std::string& depot_build,
                                     const std::string& depot_project, const BuildRequest& request,
                                     const BuildLogSink& log, const std::atomic<bool>* cancel) {
    const std::string platforms = request.platform.empty() ? config_.platform : request.platform;
    const std::string platform = platforms.substr(0, platforms.find(','));
    // Reported from the first request for a machine on, as depot-go does, until the build ends.
    HealthReporter health(build_api, depot_build, BuilderPlatformOf(platform));
    SLIPWAY_ASSIGN_OR_RETURN(buildkit::BuildkitEndpoint machine,
                             AcquireMachine(build_api, depot_build, platform, log, cancel));
    SLIPWAY_ASSIGN_OR_RETURN(auto channel, buildkit::Dial(machine));

    buildkit::SolveSpec spec;
    spec.build_id = request.build_id;
    spec.context_url = request.context_url;
    spec.dockerfile = request.dockerfile;
    spec.target = request.target;
    spec.build_args = request.build_args;
    spec.platforms = platforms;
    spec.image = DepotImage(depot_project, request.image_name);
    buildkit::SolveTarget target{channel, "Depot machine " + machine.host,
                                 !machine.tls_cert.empty(), &credentials_};
    return buildkit::Solve(target, spec, log, cancel);
  }

  // "<DEPOT_REGISTRY>/<depot project>:<project>-<deployment>" from "<project>:<deployment>".
  std::string DepotImage(const std::string& depot_project, std::string image_name) const {
    std::replace(image_name.begin(), image_name.end(), ':', '-');
    std::replace(image_name.begin(), image_name.end(), '/', '-');
    return fmt::format("{}/{}:{}", config_.depot_registry, depot_project, image_name);
  }

  // Asks Depot for the build's machine until it is active, waiting as long as Depot says between
  // asks, up to DEPOT_MACHINE_TIMEOUT.
  Result<buildkit::BuildkitEndpoint> AcquireMachine(const net::ConnectClient& build_api,
                                                    const std::string& depot_build,
                                                    const std::string& platform,
                                                    const BuildLogSink& log,
                                                    const std::atomic<bool>* cancel) {
    cliv1::GetBuildKitConnectionRequest req;
    req.set_build_id(depot_build);
    req.set_platform(BuilderPlatformOf(platform));
    const auto deadline = std::chrono::steady_clock::now() + config_.depot_machine_timeout;
    bool said_pending = false;
    for (;;) {
      if (cancel != nullptr && cancel->load()) {
        return Status::Canceled("the build was canceled while waiting for a Depot machine");
      }
      auto answer = build_api.Call<cliv1::GetBuildKitConnectionResponse>(
          net::ConnectProcedure(kBuildService, "GetBuildKitConnection"), req);
      if (!answer.ok()) {
        return DepotError(answer.status(), "asking for a " + platform + " machine",
                          config_.depot_api_url, true);
      }
      if (answer->has_active()) {
        const cliv1::ActiveConnection& a = answer->active();
        log(fmt::format("depot: {} machine active at {}", platform, a.endpoint()));
        return buildkit::BuildkitEndpoint{a.endpoint(), a.ca_cert().cert(), a.cert().cert(),
                                          a.cert().key(), a.server_name()};
      }
      if (!said_pending) {
        log(fmt::format("depot: waiting for a {} machine", platform));
        said_pending = true;
      }
      auto wait = std::chrono::milliseconds(std::clamp(answer->pending().wait_ms(), 100, 5000));
      if (std::chrono::steady_clock::now() + wait >= deadline) {
        return Status::FailedPrecondition(fmt::format(
            "Depot kept the {} machine of this build pending for {} (DEPOT_MACHINE_TIMEOUT): "
            "no builder became available; try again later or raise DEPOT_MACHINE_TIMEOUT",
            platform, FormatDuration(config_.depot_machine_timeout)));
      }
      for (auto until = std::chrono::steady_clock::now() + wait;
           std::chrono::steady_clock::now() < until;) {
        if (cancel != nullptr && cancel->load()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }

  BuildBackendConfig config_;
  DepotRecords* records_;
  net::ConnectClient org_api_;  // with the organization token
  buildkit::RegistryCredentials credentials_;
  std::mutex locks_mu_;
  std::map<std::string, std::unique_ptr<std::mutex>> project_locks_;
};

}  // namespace

std::string DepotProjectName(const std::string& project_id) { return "slipway-" + project_id; }

Result<std::unique_ptr<BuildBackend>> MakeDepotBackend(const BuildBackendConfig& config,
                                                       DepotRecords* records) {
  if (config.depot_token.empty()) {
    return Status::InvalidArgument(
        "BUILD_BACKEND=depot needs a Depot organization token: set DEPOT_TOKEN (or "
        "--depot-token) to a token from your Depot organization's settings");
  }
  if (config.depot_api_url.empty()) {
    return Status::InvalidArgument(
        "DEPOT_API_URL is empty: leave it unset for "
        "https://api.depot.dev or set it to Depot's API address");
  }
  if (config.depot_cache_keep_gb <= 0 || config.depot_cache_keep_days < 0) {
    return Status::InvalidArgument(
        "DEPOT_CACHE_KEEP_GB must be above 0 and DEPOT_CACHE_KEEP_DAYS at least 0 (0: no limit)");
  }
  if (config.depot_machine_timeout.count() <= 0) {
    return Status::InvalidArgument("DEPOT_MACHINE_TIMEOUT must be above 0 (e.g. 5m)");
  }
  if (records == nullptr) {
    return Status::Internal("the depot backend needs ctrl's database to record Depot projects");
  }
  return std::unique_ptr<BuildBackend>(std::make_unique<DepotBackend>(config, records));
}

}  // namespace slipway::ctrl::build::depot
