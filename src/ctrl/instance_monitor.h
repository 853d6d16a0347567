// Keeps the instance rows of every serving deployment (READY and not stopped) as krane sees
// them after the deploy's wait step has ended. An instance that dies after READY is FAILED in
// the partition database at once, with krane's reason (exit code, last log lines), so the
// gateway routes no request to it (with no RUNNING instance left it answers 503) and
// `slipway status` shows why; once the engine's restart policy (dockerd's unless-stopped, the
// StatefulSet) has it answering again it is RUNNING again. The deployment's own record (status,
// steps, error) is left as the deploy ended: it was deployed, and is still the one serving.
//
// How: one thread follows the list of serving deployments (read again on each deployment
// change notice, and every resync_interval regardless), and each serving deployment has a
// follower thread on krane's WatchDeployment stream (no until_settled), reopened with a backoff
// when it breaks. A follower only updates rows that exist (PartitionStore::RefreshInstances),
// so a deployment stopped or deleted meanwhile is never brought back into the gateway's view.
// When krane has no instances of a serving deployment any more, its rows become FAILED saying
// so. Thread-safe; Stop() (or destruction) ends every thread within about a second.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "ctrl/partition_store.h"
#include "ctrl/store.h"

namespace slipway::net {
class ConnectClient;
}  // namespace slipway::net

namespace slipway::ctrl {

struct InstanceMonitorOptions {
  // How often the list of serving deployments is read again without a notice (a notice can be
  // lost, and SQLite has none across processes).
  std::chrono::milliseconds resync_interval{5000};
  // Each WatchDeployment stream is opened again after this long, so a stream that went quiet
  // in a way neither side noticed does not hide changes for ever.
  std::chrono::milliseconds stream_lifetime{10 * 60 * 1000};
};

class InstanceMonitor {
 public:
  // Every argument must outlive the monitor. Starts following at once.
  InstanceMonitor(Store& store, PartitionStore& partition, net::ConnectClient& krane,
                  InstanceMonitorOptions options = {});
  ~InstanceMonitor();
  InstanceMonitor(const InstanceMonitor&) = delete;
  InstanceMonitor& operator=(const InstanceMonitor&) = delete;

  void Stop();

  // How many deployments are followed now (for tests and metrics).
  size_t followed() const;

 private:
  class Follower;

  void Run();
  void Resync();

  Store& store_;
  PartitionStore& partition_;
  net::ConnectClient& krane_;
  const InstanceMonitorOptions options_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool changed_ = true;
  std::map<std::string, std::unique_ptr<Follower>> followers_;  // by deployment id
  std::unique_ptr<db::ChangeSubscription> subscription_;
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace slipway::ctrl
