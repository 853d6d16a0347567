#include "krane/instance_follow.h"

#include <algorithm>

namespace slipway::krane {
namespace {

using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

// How often stop() is asked while nothing happens.
constexpr milliseconds kStopCheck{1000};

bool SameInstances(const std::vector<Instance>& a, const std::vector<Instance>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const Instance& x, const Instance& y) {
                      return x.id == y.id && x.address == y.address && x.status == y.status &&
                             x.reason == y.reason;
                    });
}

// PENDING, or FAILED while the stream goes on: an instance that died after it was ready comes
// back by the engine's restart policy, and only a probe tells when it answers again.
bool AnyToProbe(const std::vector<Instance>& instances) {
  return std::any_of(instances.begin(), instances.end(),
                     [](const Instance& i) { return i.status != InstanceStatus::kRunning; });
}

}  // namespace

bool Settled(const std::vector<Instance>& instances) {
  if (instances.empty()) return false;
  bool all_running = true;
  for (const Instance& i : instances) {
    if (i.status == InstanceStatus::kFailed) return true;
    all_running &= i.status == InstanceStatus::kRunning;
  }
  return all_running;
}

Status FollowDeployment(KraneBackend& backend, const DeploymentRef& ref,
                        const FollowOptions& options,
                        const std::function<bool(const std::vector<Instance>&)>& send,
                        const std::function<bool()>& stop) {
  // Taken before the first read, so an event between the read and the first wait is not lost.
  uint64_t version = backend.WaitForInstanceChange(ref, 0, milliseconds(0));
  std::vector<Instance> sent;
  bool first = true;
  milliseconds probe = options.first_probe_interval;
  for (;;) {
    SLIPWAY_ASSIGN_OR_RETURN(std::vector<Instance> now, backend.GetDeployment(ref));
    if (first || !SameInstances(now, sent)) {
      if (!send(now)) return Status::Ok();
      first = false;
      sent = std::move(now);
      if (options.until_settled && Settled(sent)) return Status::Ok();
    }
    // Instances not RUNNING are probed again soon; otherwise only an event (or the safety
    // poll) makes the next read.
    const bool pending = AnyToProbe(sent);
    const milliseconds pause = pending ? probe : options.safety_poll;
    if (pending) {
      probe = std::min(options.max_probe_interval, probe + std::max(probe / 4, milliseconds(1)));
    } else {
      probe = options.first_probe_interval;
    }
    const auto next_read = Steady::now() + pause;
    for (;;) {
      if (stop()) return Status::Ok();
      const auto left = std::chrono::duration_cast<milliseconds>(next_read - Steady::now());
      if (left <= milliseconds(0)) break;
      const uint64_t seen = version;
      version = backend.WaitForInstanceChange(ref, seen, std::min(left, kStopCheck));
      if (version != seen) {
        probe = options.first_probe_interval;  // something happened: look closely again
        break;
      }
    }
  }
}

}  // namespace slipway::krane
