#include "ctrl/deployment_ops.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "base/duration.h"
#include "ctrl/krane_instances.h"
#include "net/connect.h"
#include "slipway/krane/v1/deployment.pb.h"

namespace slipway::ctrl {
namespace {

namespace kv1 = slipway::krane::v1;
using Json = nlohmann::json;

constexpr std::string_view kKraneService = "slipway.krane.v1.DeploymentService";
// How long moving hosts waits for every gateway to load a route change.
constexpr std::chrono::milliseconds kRoutePropagationTimeout{3000};

// The wait step's journaled output: the instances as they were when all were RUNNING, so
// the later steps (openapi) see the same addresses on replay.
std::string InstancesJson(const std::vector<InstanceRow>& rows) {
  Json out = Json::array();
  for (const auto& r : rows)
    out.push_back({{"id", r.instance_id}, {"address", r.address}, {"status", r.status}});
  return out.dump();
}

// Why the instances are not ready at the deadline, naming each one.
std::string NotReadyMessage(const std::vector<InstanceRow>& last, int replicas,
                            std::chrono::milliseconds deadline, const std::string& last_error) {
  std::string names;
  for (const auto& r : last) {
    if (r.status == "RUNNING") continue;
    names += fmt::format("{}{} ({}{}{})", names.empty() ? "" : ", ", r.instance_id, r.status,
                         r.reason.empty() ? "" : ": ", r.reason);
  }
  const int missing = replicas - static_cast<int>(last.size());
  if (missing > 0) {
    names +=
        fmt::format("{}{} instance(s) krane never reported", names.empty() ? "" : ", ", missing);
  }
  if (names.empty()) names = "no instance";
  std::string msg = fmt::format(
      "the instances did not all become ready within {}: {} never became ready; make sure the "
      "app listens on the port in $PORT (and answers its health check path) soon after it "
      "starts",
      FormatDuration(deadline), names);
  if (!last_error.empty()) msg += fmt::format(" (last error: {})", last_error);
  return msg;
}

// How long from now until deadline on clock, at least 1 ms (a stream timeout of 0 is none).
std::chrono::milliseconds DeadlineFrom(Clock& clock, std::chrono::system_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock.Now());
  return std::max(left, std::chrono::milliseconds(1));
}

// Follows krane's WatchDeployment for the wait step, on a thread of its own, and keeps the
// newest instances it sent for the step to take. A stream that breaks is opened again (backing
// off from 200 ms to 5 s); one that ends normally (krane ends it once the instances settled)
// or that krane does not have (an older krane: unimplemented) is not, and the step's poll
// carries on alone. Destruction cancels the stream and waits for the thread, which notices
// within about a second when the stream is quiet.
class KraneInstanceWatch {
 public:
  KraneInstanceWatch(net::ConnectClient& krane, kv1::WatchDeploymentRequest request,
                     std::chrono::milliseconds timeout, std::function<void()> wake)
      : krane_(krane),
        request_(std::move(request)),
        timeout_(timeout),
        wake_(std::move(wake)),
        thread_([this] { Run(); }) {}

  ~KraneInstanceWatch() {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // True once the stream sent instances not taken yet. Lock-free: read under the engine's lock.
  bool has_news() const { return has_news_.load(); }

  std::optional<std::vector<InstanceRow>> TakeNews() {
    std::lock_guard lock(mu_);
    if (!has_news_) return std::nullopt;
    has_news_ = false;
    return std::move(newest_);
  }

 private:
  bool cancelled() {
    std::lock_guard lock(mu_);
    return cancelled_;
  }

  void Run() {
    const auto give_up = std::chrono::steady_clock::now() + timeout_;
    std::chrono::milliseconds backoff{200};
    net::StreamCallOptions call;
    call.cancelled = [this] { return cancelled(); };
    while (!cancelled()) {
      call.timeout = std::max(std::chrono::milliseconds(1),
                              std::chrono::duration_cast<std::chrono::milliseconds>(
                                  give_up - std::chrono::steady_clock::now()));
      Status ended = krane_.Stream<kv1::WatchDeploymentResponse>(
          net::ConnectProcedure(kKraneService, "WatchDeployment"), request_,
          [this](const kv1::WatchDeploymentResponse& m) {
            {
              std::lock_guard lock(mu_);
              newest_ = InstanceRowsFromKrane(m.instances());
              has_news_ = true;
            }
            wake_();
            return !cancelled();
          },
          call);
      if (ended.ok() || cancelled()) return;
      if (ended.code() == Code::kUnimplemented) {
        spdlog::info("deployment {}: krane has no WatchDeployment (an older krane?); asking it "
                     "with GetDeployment polls only",
                     request_.deployment_id());
        return;
      }
      if (ended.code() == Code::kDeadlineExceeded ||
          std::chrono::steady_clock::now() >= give_up) {
        return;
      }
      spdlog::warn("deployment {}: krane's WatchDeployment stream ended: {}; opening it again in "
                   "{} ms (polling meanwhile)",
                   request_.deployment_id(), ended.message(), backoff.count());
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, backoff, [this] { return cancelled_; });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
  }

  net::ConnectClient& krane_;
  const kv1::WatchDeploymentRequest request_;
  const std::chrono::milliseconds timeout_;
  const std::function<void()> wake_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
  std::atomic<bool> has_news_{false};
  std::vector<InstanceRow> newest_;
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace

template <typename Request>
void DeploymentOps::SetRef(Request& req) const {
  req.set_namespace_(d_.workspace_id);
  req.set_deployment_id(d_.id);
}

Status DeploymentOps::RequireKrane() const {
  if (deps_.krane == nullptr || deps_.partition == nullptr) {
    return Status::FailedPrecondition(
        "this control plane has no krane to run instances on (start it with KRANE_URL, "
        "KRANE_TOKEN and PARTITION_DATABASE_URL, or use `slipway dev`)");
  }
  return Status::Ok();
}

Result<std::string> DeploymentOps::Schedule(const std::string& image) {
    SLIPWAY_RETURN_IF_ERROR(RequireKrane());
    kv1::CreateDeploymentRequest req;
    SetRef(req);
    req.set_image(image);
    req.set_replicas(static_cast<int32_t>(Replicas()));
    req.set_cpu_millicores(static_cast<int32_t>(d_.cpu_millicores));
    req.set_memory_mib(static_cast<int32_t>(d_.memory_mib));
    req.set_port(static_cast<int32_t>(d_.port));
    req.set_health_check_path(d_.health_check_path);
    // A registry that wants credentials (Depot's) gets them from the backend that pushed there.
    if (auto pull = deps_.builder ? deps_.builder->PullCredentialsFor(image) : std::nullopt) {
      req.mutable_pull_auth()->set_server(pull->server);
      req.mutable_pull_auth()->set_username(pull->username);
      req.mutable_pull_auth()->set_password(pull->password);
    }
    // Opened here and sent only to krane: the plaintext of a secret is in no journaled output.
    if (deps_.secrets != nullptr) {
      auto env = ResolveAppEnv(*deps_.store, *deps_.secrets, d_);
      if (!env.ok()) return workflow::Terminal(env.status());
      for (const auto& [k, v] : *env) (*req.mutable_env())[k] = v;
    } else {
      for (const auto& [k, v] : d_.env) (*req.mutable_env())[k] = v;
    }
    auto created = deps_.krane->Call<kv1::CreateDeploymentResponse>(
        net::ConnectProcedure(kKraneService, "CreateDeployment"), req);
    if (!created.ok()) return created.status().WithContext("krane refused to create the instances");
    return fmt::format("{} instance(s) created on krane", created->instances_size());
  }


Result<std::string> DeploymentOps::WaitForInstances(std::chrono::system_clock::time_point deadline) {
  const int replicas = static_cast<int>(Replicas());
  kv1::WatchDeploymentRequest watch_req;
  SetRef(watch_req);
  watch_req.set_until_settled(true);
  KraneInstanceWatch watch(*deps_.krane, watch_req, DeadlineFrom(ctx_.clock(), deadline),
                           [this] { ctx_.WakeSleepers(); });
  std::vector<InstanceRow> last;
  std::string last_error;
  auto next_poll = ctx_.clock().Now();  // the first look is a poll: krane may be an older one
  for (;;) {
    std::optional<std::vector<InstanceRow>> seen = watch.TakeNews();
    if (!seen && ctx_.clock().Now() >= next_poll) {
      next_poll = ctx_.clock().Now() + deps_.wait_interval;
      kv1::GetDeploymentRequest req;
      SetRef(req);
      auto got = deps_.krane->Call<kv1::GetDeploymentResponse>(
          net::ConnectProcedure(kKraneService, "GetDeployment"), req);
      if (got.ok()) {
        seen = InstanceRowsFromKrane(got->instances());
      } else if (got.status().code() == Code::kNotFound || workflow::IsTransient(got.status())) {
        last_error = got.status().message();
      } else {
        return workflow::Terminal(got.status().WithContext("asking krane about the instances"));
      }
    }
    if (seen) {
      last = std::move(*seen);
      last_error.clear();
      // The gateway finds instances through these rows: a write that fails is tried again
      // with the next answer, and the wait is done only once they are written.
      Status mirrored = deps_.partition->UpsertInstances(d_.id, last);
      if (!mirrored.ok()) {
        last_error = mirrored.WithContext("recording the instances").message();
        spdlog::warn("deployment {}: {}", d_.id, last_error);
      }
      int running = 0;
      for (const auto& in : last) {
        if (in.status == "FAILED") {
          return Status::FailedPrecondition(
              fmt::format("instance {} failed: {}", in.instance_id, in.reason));
        }
        if (in.status == "RUNNING") ++running;
      }
      if (running >= replicas && mirrored.ok()) return InstancesJson(last);
    }
    const auto now = ctx_.clock().Now();
    if (now >= deadline) {
      return Status::FailedPrecondition(
          NotReadyMessage(last, replicas, deps_.wait_deadline, last_error));
    }
    // The engine's timer, cut short by news from krane's stream: returns kCanceled at once
    // when the engine stops, so a long wait never holds up a shutdown; the run resumes this
    // step with the same deadline.
    SLIPWAY_RETURN_IF_ERROR(
        ctx_.SleepUntil(std::min(next_poll, deadline), [&] { return watch.has_news(); }));
  }
}

Result<bool> DeploymentOps::AllRunning() {
  SLIPWAY_RETURN_IF_ERROR(RequireKrane());
  kv1::GetDeploymentRequest req;
  SetRef(req);
  auto got = deps_.krane->Call<kv1::GetDeploymentResponse>(
      net::ConnectProcedure(kKraneService, "GetDeployment"), req);
  if (!got.ok()) {
    if (got.status().code() == Code::kNotFound) return false;
    return got.status().WithContext("asking krane about the instances");
  }
  int running = 0;
  for (const auto& in : got->instances()) running += in.status() == kv1::INSTANCE_STATUS_RUNNING;
  return running >= Replicas();
}

Result<std::string> DeploymentOps::MoveHosts(const std::vector<DeploymentHost>& hosts,
                                             const std::string& environment) {
  std::vector<DomainClaim> claims;
  std::vector<std::string> names;
  for (const auto& h : hosts) {
    claims.push_back({h.hostname, std::string(HostKindName(h.kind)),
                      h.kind == HostKind::kEnvironment ? environment : ""});
    names.push_back(h.hostname);
  }
  SLIPWAY_RETURN_IF_ERROR(deps_.store->ClaimDomains(d_.project_id, d_.id, claims));
  SLIPWAY_RETURN_IF_ERROR(deps_.partition->RouteHosts(d_.id, names));
  // The caller promises the hosts answer from this deployment: wait for the gateways to load
  // the new routes (they reload every fraction of a second). A gateway that lags is logged,
  // not fatal: the route is committed and reaches it on its next load.
  const int64_t routed_at = deps_.partition->NowMs();
  auto behind = deps_.partition->WaitForGateways(routed_at, kRoutePropagationTimeout);
  if (!behind.ok()) {
    spdlog::warn("deployment {}: cannot tell whether the gateways have its routes: {}", d_.id,
                 behind.status().message());
  } else if (!behind->empty()) {
    spdlog::warn("deployment {}: {} gateway(s) have not loaded its routes within {} ms ({})",
                 d_.id, behind->size(), kRoutePropagationTimeout.count(), fmt::join(*behind, ", "));
  }
  return fmt::format("{}", fmt::join(names, " "));
}

Result<int> DeploymentOps::DeleteOnKrane() {
  SLIPWAY_RETURN_IF_ERROR(RequireKrane());
  kv1::DeleteDeploymentRequest req;
  SetRef(req);
  auto deleted = deps_.krane->Call<kv1::DeleteDeploymentResponse>(
      net::ConnectProcedure(kKraneService, "DeleteDeployment"), req);
  if (deleted.ok()) return deleted->removed();
  if (deleted.status().code() == Code::kNotFound) return 0;
  return deleted.status().WithContext("removing the instances from krane");
}

Result<std::string> DeploymentOps::StopInstances() {
  SLIPWAY_ASSIGN_OR_RETURN(int removed, DeleteOnKrane());
  SLIPWAY_RETURN_IF_ERROR(deps_.partition->MarkStopped(d_.id, true));
  return fmt::format("{} instance(s) stopped", removed);
}

Result<std::string> DeploymentOps::RemoveInstances() {
  SLIPWAY_ASSIGN_OR_RETURN(int removed, DeleteOnKrane());
  SLIPWAY_RETURN_IF_ERROR(deps_.partition->RemoveDeployment(d_.id));
  return fmt::format("{} instance(s) removed", removed);
}

}  // namespace slipway::ctrl
