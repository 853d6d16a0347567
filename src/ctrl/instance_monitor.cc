#include "ctrl/instance_monitor.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <set>

#include "ctrl/krane_instances.h"
#include "net/connect.h"
#include "slipway/krane/v1/deployment.pb.h"

namespace slipway::ctrl {
namespace {

namespace kv1 = slipway::krane::v1;
using std::chrono::milliseconds;

constexpr std::string_view kKraneService = "slipway.krane.v1.DeploymentService";
// Reading the serving deployments on every notice (each build log batch is one) would be a
// query per notice: notices that arrive close together are taken as one.
constexpr milliseconds kNoticeCoalescing{200};
constexpr milliseconds kFirstBackoff{200};
constexpr milliseconds kMaxBackoff{5000};

bool SameRows(const std::vector<InstanceRow>& a, const std::vector<InstanceRow>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const InstanceRow& x, const InstanceRow& y) {
                      return x.instance_id == y.instance_id && x.address == y.address &&
                             x.status == y.status && x.reason == y.reason;
                    });
}

}  // namespace

// Follows one deployment's WatchDeployment stream on a thread of its own and writes what
// changed into its instance rows.
class InstanceMonitor::Follower {
 public:
  Follower(InstanceMonitor& monitor, Store::ServingDeployment deployment)
      : monitor_(monitor), deployment_(std::move(deployment)), thread_([this] { Run(); }) {}

  ~Follower() {
    Cancel();
    thread_.join();
  }

  void Cancel() {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
    }
    cv_.notify_all();
  }

 private:
  bool cancelled() {
    std::lock_guard lock(mu_);
    return cancelled_;
  }

  // Writes krane's view when it differs from what this follower wrote last.
  void Record(std::vector<InstanceRow> rows) {
    if (written_ && SameRows(rows, last_)) return;
    auto changed = monitor_.partition_.RefreshInstances(deployment_.id, rows);
    if (!changed.ok()) {
      // The next message (or the reopened stream's first) tries again.
      spdlog::warn("deployment {}: recording its instances: {}", deployment_.id,
                   changed.status().message());
      written_ = false;
      return;
    }
    for (const auto& r : rows) {
      const auto was = std::find_if(last_.begin(), last_.end(), [&](const InstanceRow& o) {
        return o.instance_id == r.instance_id;
      });
      if (*changed > 0 && (was == last_.end() || was->status != r.status)) {
        if (r.status == "RUNNING") {
          spdlog::info("deployment {}: instance {} is RUNNING{}{}{}", deployment_.id,
                       r.instance_id, r.reason.empty() ? "" : " (", r.reason,
                       r.reason.empty() ? "" : ")");
        } else {
          spdlog::warn("deployment {}: instance {} is {} after the deployment was ready: {}",
                       deployment_.id, r.instance_id, r.status, r.reason);
        }
      }
    }
    last_ = std::move(rows);
    written_ = true;
  }

  // krane has no instances of a deployment that should be serving: nothing answers for it.
  void RecordGone(const std::string& why) {
    auto rows = monitor_.partition_.ListInstances(deployment_.id);
    if (!rows.ok()) return;
    for (auto& r : *rows) {
      r.status = "FAILED";
      r.reason = "krane has no instance of this deployment any more (" + why +
                 "); redeploy it, or roll back to another deployment";
    }
    Record(std::move(*rows));
  }

  void Run() {
    milliseconds backoff = kFirstBackoff;
    kv1::WatchDeploymentRequest req;
    req.set_namespace_(deployment_.workspace_id);
    req.set_deployment_id(deployment_.id);
    net::StreamCallOptions call;
    call.cancelled = [this] { return cancelled(); };
    call.timeout = monitor_.options_.stream_lifetime;
    while (!cancelled()) {
      bool got_message = false;
      Status ended = monitor_.krane_.Stream<kv1::WatchDeploymentResponse>(
          net::ConnectProcedure(kKraneService, "WatchDeployment"), req,
          [&](const kv1::WatchDeploymentResponse& m) {
            got_message = true;
            Record(InstanceRowsFromKrane(m.instances()));
            return !cancelled();
          },
          call);
      if (cancelled()) return;
      if (got_message) backoff = kFirstBackoff;
      if (ended.code() == Code::kUnimplemented) {
        spdlog::info("deployment {}: krane has no WatchDeployment (an older krane?); its "
                     "instances are not followed after it was ready",
                     deployment_.id);
        return;
      }
      if (ended.code() == Code::kNotFound) {
        RecordGone(ended.message());
      } else if (!ended.ok() && ended.code() != Code::kDeadlineExceeded) {
        spdlog::debug("deployment {}: krane's WatchDeployment stream ended: {}; opening it "
                      "again in {} ms",
                      deployment_.id, ended.message(), backoff.count());
      }
      if (ended.ok() || ended.code() == Code::kDeadlineExceeded) continue;  // its lifetime
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, backoff, [this] { return cancelled_; });
      backoff = std::min(backoff * 2, kMaxBackoff);
    }
  }

  InstanceMonitor& monitor_;
  const Store::ServingDeployment deployment_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
  // Only this follower's thread touches these.
  std::vector<InstanceRow> last_;
  bool written_ = false;
  std::thread thread_;  // last: starts once everything above exists
};

InstanceMonitor::InstanceMonitor(Store& store, PartitionStore& partition,
                                 net::ConnectClient& krane, InstanceMonitorOptions options)
    : store_(store), partition_(partition), krane_(krane), options_(options) {
  // Before the first read: a deployment that becomes READY meanwhile is not missed.
  subscription_ = store_.SubscribeToChanges([this](std::string_view) {
    {
      std::lock_guard lock(mu_);
      changed_ = true;
    }
    wake_.notify_all();
  });
  thread_ = std::thread([this] { Run(); });
}

InstanceMonitor::~InstanceMonitor() { Stop(); }

void InstanceMonitor::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  subscription_.reset();
  std::map<std::string, std::unique_ptr<Follower>> followers;
  {
    std::lock_guard lock(mu_);
    followers.swap(followers_);
  }
  for (auto& [id, f] : followers) f->Cancel();  // all at once, then each joined
  followers.clear();
}

size_t InstanceMonitor::followed() const {
  std::lock_guard lock(mu_);
  return followers_.size();
}

void InstanceMonitor::Run() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, options_.resync_interval, [this] { return stop_ || changed_; });
      if (stop_) return;
      changed_ = false;
    }
    Resync();
    std::unique_lock lock(mu_);
    wake_.wait_for(lock, kNoticeCoalescing, [this] { return stop_; });
    if (stop_) return;
  }
}

void InstanceMonitor::Resync() {
  auto serving = store_.ServingDeployments();
  if (!serving.ok()) {
    spdlog::warn("instance monitor: reading the serving deployments: {}",
                 serving.status().message());
    return;
  }
  std::set<std::string> now;
  for (const auto& d : *serving) now.insert(d.id);
  std::vector<std::unique_ptr<Follower>> ended;
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    for (auto it = followers_.begin(); it != followers_.end();) {
      if (now.count(it->first) == 0) {
        it->second->Cancel();
        ended.push_back(std::move(it->second));
        it = followers_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& d : *serving) {
      if (followers_.count(d.id) == 0) followers_.emplace(d.id, std::make_unique<Follower>(*this, d));
    }
  }
  ended.clear();  // joined outside the lock
}

}  // namespace slipway::ctrl
