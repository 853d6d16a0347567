#include "ctrl/build/buildkit/solve.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <nlohmann/json.hpp>
#include <mutex>
#include <regex>
#include <thread>

#include "base/crypto.h"
#include "ctrl/build/buildkit/session.h"
#include "ctrl/build/buildkit_progress.h"
#include "moby/buildkit/v1/control.grpc.pb.h"

namespace slipway::ctrl::build::buildkit {
namespace {

namespace bk = moby::buildkit::v1;

bool Contains(const std::string& s, std::string_view needle) {
  return s.find(needle) != std::string::npos;
}

bool LooksLikeTls(const std::string& m) {
  return Contains(m, "handshake") || Contains(m, "SSL") || Contains(m, "certificate") ||
         Contains(m, "tls:") || Contains(m, "TLS");
}

// A TLS daemon that rejects our client certificate aborts the handshake; grpc++ then sees the
// connection reset rather than the alert.
bool LooksLikeRejectedHandshake(const std::string& m) {
  return Contains(m, "reset by peer") || Contains(m, "Socket closed") || Contains(m, "EOF") ||
         Contains(m, "Endpoint read failed");
}

// Why the daemon could not even be asked: unreachable (transient) or refusing us (terminal).
Status ExplainConnectFailure(const grpc::Status& st, const std::string& daemon, bool tls) {
  const std::string& m = st.error_message();
  if (LooksLikeTls(m) || (tls && LooksLikeRejectedHandshake(m))) {
    return Status::FailedPrecondition(fmt::format(
        "BuildKit at {} refused the TLS connection: {} (BUILDKIT_TLS_CERT and BUILDKIT_TLS_KEY "
        "must be a client certificate signed by the CA the daemon trusts; BUILDKIT_TLS_CA and "
        "BUILDKIT_TLS_SERVER_NAME must match the daemon's own certificate)",
        daemon, m));
  }
  if (st.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
      st.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
    return Status::PermissionDenied(fmt::format("BuildKit at {} refused us: {}", daemon, m));
  }
  return Status::Unavailable(fmt::format(
      "cannot reach BuildKit at {}: {} (is buildkitd running and BUILDKIT_HOST right? "
      "scripts/buildkitd.sh starts one)",
      daemon, m));
}

std::string FirstMatch(const std::string& text, const std::regex& re) {
  std::smatch m;
  return std::regex_search(text, m, re) ? m[1].str() : "";
}

// The daemon answered and the build failed: one message that says what and what to do.
Status ExplainBuildFailure(const grpc::Status& st, const BuildkitProgress& progress,
                           const SolveSpec& spec, const std::string& daemon) {
  std::string m = StripAnsi(st.error_message());
  if (st.error_code() == grpc::StatusCode::UNAVAILABLE && !LooksLikeTls(m)) {
    return Status::Unavailable(
        fmt::format("lost the connection to BuildKit at {} during the build: {}", daemon, m));
  }
  if (LooksLikeTls(m) && st.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return ExplainConnectFailure(st, daemon, true);
  }
  if (Contains(m, "failed to read dockerfile") || Contains(m, "failed to solve with frontend dockerfile.v0: failed to read")) {
    return Status::FailedPrecondition(fmt::format(
        "no Dockerfile at \"{}\" in the uploaded context (pass the Dockerfile's path inside the "
        "context with --dockerfile); the builder said: {}",
        spec.dockerfile, m));
  }
  static const std::regex kBase(R"(failed to resolve source metadata for ([^:\s]+(?::[0-9]+)?/?[^\s:]*(?::[^\s:]+)?))");
  if (std::string base = FirstMatch(m, kBase); !base.empty()) {
    return Status::FailedPrecondition(fmt::format(
        "the base image {} could not be found (check the FROM line and that the image was pushed "
        "to a registry the builder can reach); the builder said: {}",
        base, m));
  }
  const bool push = Contains(m, "failed to push") || Contains(m, "pushing") ||
                    Contains(m, "push access denied") || Contains(m, "failed to authorize") ||
                    Contains(m, "no active session");
  if (push) {
    const std::string registry = RegistryHostOf(spec.image);
    const bool auth = Contains(m, "401") || Contains(m, "403") || Contains(m, "nauthorized") ||
                      Contains(m, "authoriz") || Contains(m, "denied") ||
                      Contains(m, "no active session");
    if (auth) {
      return Status::PermissionDenied(fmt::format(
          "the registry {} refused to accept {}: it requires credentials we do not have or has "
          "refused ours (set REGISTRY_USERNAME and REGISTRY_PASSWORD, or `docker login {}` so "
          "config.json holds them); the builder said: {}",
          registry, spec.image, registry, m));
    }
    return Status::FailedPrecondition(fmt::format(
        "pushing {} to the registry {} failed: {}", spec.image, registry, m));
  }
  if (!progress.failed_step().empty()) {
    std::string tail = progress.FailedStepTail();
    return Status::FailedPrecondition(fmt::format(
        "the build step {} failed: {}{}{}", progress.failed_step(), progress.failed_error(),
        tail.empty() ? "" : "; its last output:\n", tail));
  }
  if (st.error_code() == grpc::StatusCode::CANCELLED) {
    return Status::Canceled("the build was canceled on BuildKit at " + daemon);
  }
  return Status::FailedPrecondition("the build failed on BuildKit at " + daemon + ": " + m);
}

bk::SolveRequest MakeSolveRequest(const SolveSpec& spec, const std::string& ref,
                                  const std::string& session_id) {
  bk::SolveRequest req;
  req.set_ref(ref);
  req.set_session(session_id);
  req.set_frontend("dockerfile.v0");
  auto& attrs = *req.mutable_frontendattrs();
  attrs["context"] = spec.context_url;
  attrs["filename"] = spec.dockerfile.empty() ? "Dockerfile" : spec.dockerfile;
  if (!spec.platforms.empty()) attrs["platform"] = spec.platforms;
  if (!spec.target.empty()) attrs["target"] = spec.target;
  if (spec.no_cache) attrs["no-cache"] = "";
  for (const auto& [k, v] : spec.build_args) attrs["build-arg:" + k] = v;
  auto* exporter = req.add_exporters();
  exporter->set_type("image");
  (*exporter->mutable_attrs())["name"] = spec.image;
  (*exporter->mutable_attrs())["push"] = "true";
  if (!spec.cache_ref.empty()) {
    auto* imp = req.mutable_cache()->add_imports();
    imp->set_type("registry");
    (*imp->mutable_attrs())["ref"] = spec.cache_ref;
    // A frontend resolves cache imports itself: it reads them from this attribute (BuildKit's
    // own client sends the same list, JSON with its Go field names), not from Cache.Imports.
    attrs["cache-imports"] =
        nlohmann::json::array({{{"Type", "registry"}, {"Attrs", {{"ref", spec.cache_ref}}}}}).dump();
    auto* exp = req.mutable_cache()->add_exports();
    exp->set_type("registry");
    (*exp->mutable_attrs())["ref"] = spec.cache_ref;
    (*exp->mutable_attrs())["mode"] = "max";
  }
  return req;
}

}  // namespace

Result<BuildResult> Solve(const SolveTarget& target, const SolveSpec& spec, const BuildLogSink& log,
                          const std::atomic<bool>* cancel) {
  auto stub = bk::Control::NewStub(target.channel);

  // Ask the daemon something cheap first, so an unreachable daemon or a refused certificate is
  // told apart from a failed build.
  {
    bk::ListWorkersResponse resp;
    grpc::Status st;
    // A reset during a TLS handshake is asked about twice: once may be a daemon restarting,
    // twice is the daemon refusing our certificate.
    for (int attempt = 0; attempt < 2; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      st = stub->ListWorkers(&ctx, bk::ListWorkersRequest(), &resp);
      if (st.ok() || !target.tls || !LooksLikeRejectedHandshake(st.error_message())) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    if (!st.ok()) return ExplainConnectFailure(st, target.daemon, target.tls);
    if (resp.record_size() == 0) {
      return Status::Unavailable("BuildKit at " + target.daemon + " has no workers yet");
    }
  }

  std::unique_ptr<Session> session;
  if (target.credentials != nullptr && !target.credentials->empty()) {
    SLIPWAY_ASSIGN_OR_RETURN(session, Session::Attach(target.channel, *target.credentials));
  }

  const std::string ref = spec.build_id + "-" + RandomHex(6);
  BuildkitProgress progress(log);
  std::mutex mu;  // guards progress
  std::condition_variable cv;
  bool solved = false;
  bool status_done = false;

  grpc::ClientContext solve_ctx;
  grpc::ClientContext status_ctx;

  std::thread status_thread([&] {
    bk::StatusRequest req;
    req.set_ref(ref);
    auto reader = stub->Status(&status_ctx, req);
    bk::StatusResponse resp;
    while (reader->Read(&resp)) {
      std::lock_guard lock(mu);
      progress.Apply(resp);
    }
    grpc::Status st = reader->Finish();
    if (!st.ok() && st.error_code() != grpc::StatusCode::CANCELLED) {
      spdlog::debug("BuildKit status stream of {} ended: {}", ref, st.error_message());
    }
    std::lock_guard lock(mu);
    status_done = true;
    cv.notify_all();
  });
  std::thread cancel_thread([&] {
    std::unique_lock lock(mu);
    while (!solved) {
      if (cancel != nullptr && cancel->load()) {
        solve_ctx.TryCancel();
        status_ctx.TryCancel();
        return;
      }
      cv.wait_for(lock, std::chrono::milliseconds(100));
    }
  });

  bk::SolveResponse resp;
  grpc::Status st =
      stub->Solve(&solve_ctx, MakeSolveRequest(spec, ref, session ? session->id() : ""), &resp);
  {
    std::unique_lock lock(mu);
    solved = true;
    cv.notify_all();
    // The status stream ends when the job does; its last records may trail the Solve answer.
    if (!cv.wait_for(lock, std::chrono::seconds(3), [&] { return status_done; })) {
      status_ctx.TryCancel();
    }
  }
  cancel_thread.join();
  status_thread.join();
  progress.Finish();

  if (cancel != nullptr && cancel->load()) {
    return Status::Canceled("the build was canceled (ctrl is stopping); it runs again when the "
                            "deployment resumes");
  }
  if (!st.ok()) {
    Status why = ExplainBuildFailure(st, progress, spec, target.daemon);
    if (log) log("ERROR: " + why.message());
    return why;
  }
  const auto& out = resp.exporterresponse();
  auto digest = out.find("containerimage.digest");
  if (digest == out.end() || digest->second.empty()) {
    return Status::Internal("BuildKit at " + target.daemon + " pushed " + spec.image +
                            " but reported no digest");
  }
  BuildResult result;
  result.digest = digest->second;
  result.image = spec.image + "@" + result.digest;
  if (auto config = out.find("containerimage.config.digest"); config != out.end()) {
    result.image_id = config->second;
  }
  if (log) log(fmt::format("pushed {}", result.image));
  return result;
}

}  // namespace slipway::ctrl::build::buildkit
