// Follows dockerd's event stream (GET /events, container events of krane's containers only) on
// a thread of its own and turns it into a change version per deployment, for
// KraneBackend::WaitForInstanceChange: a container created, started, dead, OOM-killed or
// removed wakes whoever waits on its deployment at once.
//
// Promises: a stream that breaks (dockerd restarted, the socket closed) is opened again with a
// backoff (100 ms doubling to 5 s); every (re)opening counts as a change of every deployment,
// since events may have been missed meanwhile, so a waiter never sleeps through a change; and
// a reopened stream asks dockerd (`since`) for what it still holds from the newest event seen,
// or from a second before the last opening, so an event between dockerd's answer and its
// subscription, or during the gap, still arrives.
// Until the first opening succeeds, every deployment reads as changed once.
//
// Thread-safe. The thread runs from construction until destruction, which takes up to about a
// second (an idle stream notices it is cancelled that often).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "krane/docker/engine_client.h"

namespace slipway::krane::docker {

struct ContainerEventCounters {
  int64_t opens = 0;   // successful (re)openings of the stream
  int64_t events = 0;  // container events applied
  std::string last_error;  // why the stream last broke or failed to open; empty when none
};

class ContainerEvents {
 public:
  // engine must outlive this. label_filter: "slipway.managed-by=krane".
  ContainerEvents(const EngineClient& engine, std::string label_filter, std::string deployment_label);
  ~ContainerEvents();
  ContainerEvents(const ContainerEvents&) = delete;
  ContainerEvents& operator=(const ContainerEvents&) = delete;

  // Blocks until the deployment's version passes `seen` or timeout passes; returns its version.
  uint64_t WaitForChange(const std::string& deployment_id, uint64_t seen,
                         std::chrono::milliseconds timeout);
  ContainerEventCounters counters() const;

 private:
  void Run();
  void Opened(const net::Headers& headers);
  // Applies one line of the stream; malformed lines are skipped.
  void Apply(std::string_view line);
  uint64_t VersionOf(const std::string& deployment_id) const;  // with mu_ held

  const EngineClient& engine_;
  const std::string label_filter_, deployment_label_;

  mutable std::mutex mu_;
  std::condition_variable changed_;
  uint64_t version_ = 1;   // the newest version handed out
  uint64_t reset_at_ = 1;  // every deployment changed at this version (an opening)
  std::map<std::string, uint64_t> changed_at_;  // a deployment's last event
  ContainerEventCounters counters_;
  // dockerd's clock, in nanoseconds since the epoch, that a reopened stream replays from: the
  // newest event's timeNano or a second before the last opening's Date; 0 until known.
  int64_t resume_from_nanos_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace slipway::krane::docker
