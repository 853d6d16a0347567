// Following one deployment's instances as they change: the body of krane's server-streaming
// WatchDeployment, apart from the wire so it can be tested on a backend of its own.
//
// What drives it: the backend's events (KraneBackend::WaitForInstanceChange: Docker's /events,
// a Kubernetes watch) wake it at once; while an instance is PENDING it reads the deployment again
// (or, once settled, FAILED: dockerd's restart policy or the StatefulSet brings a crashed one
// back) on a short, slowly growing interval, because an app starting to listen is no engine event
// (krane's readiness probe, or the kubelet's, decides RUNNING); and with nothing pending it
// reads again every safety_poll anyway, so a missed event costs at most that long.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "base/status.h"
#include "krane/backend.h"

namespace slipway::krane {

struct FollowOptions {
  // While an instance is PENDING: the first pause between two reads, growing by a quarter each
  // read up to max_probe_interval (an app that takes long to start is probed less often).
  std::chrono::milliseconds first_probe_interval{20};
  std::chrono::milliseconds max_probe_interval{250};
  // With nothing pending, the longest time between two reads without an event.
  std::chrono::milliseconds safety_poll{5000};
  // End after the first message in which every instance is RUNNING or one is FAILED.
  bool until_settled = false;
};

// Every instance RUNNING (at least one), or one FAILED: nothing more to wait for.
bool Settled(const std::vector<Instance>& instances);

// Calls send with ref's instances now, then each time they differ from the last ones sent, until
// send returns false, stop() returns true (asked at least every second), or with until_settled
// after the settled message. Returns Ok then; NotFound when the deployment has no instances (at
// the start, or deleted meanwhile); the backend's error when reading fails.
Status FollowDeployment(KraneBackend& backend, const DeploymentRef& ref,
                        const FollowOptions& options,
                        const std::function<bool(const std::vector<Instance>&)>& send,
                        const std::function<bool()>& stop);

}  // namespace slipway::krane
