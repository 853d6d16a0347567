// An in-memory copy of one kind of object in one namespace (pods or StatefulSets carrying
// krane's labels), kept current by a watch: list, then ?watch=1 from the list's
// resourceVersion with bookmarks; a dropped connection resumes from the last version seen,
// and 410 Gone (that version is too old) lists again. krane answers GetDeployment from it.
//
// Thread-safe. The watch runs on its own thread from construction to destruction.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "krane/kubernetes/kube_api.h"

namespace slipway::krane::kubernetes {

struct WatchCounters {
  bool synced = false;  // a list has completed: the copy is usable
  int lists = 0;        // full lists (the first one, then one per 410 Gone or error)
  int resumes = 0;      // watches resumed from a resourceVersion after a drop or timeout
  int gone = 0;         // 410 Gone answers
  int64_t events = 0;   // ADDED/MODIFIED/DELETED events applied
  int64_t bookmarks = 0;
  std::string last_error;  // why the last watch or list failed, empty when none
};

class ResourceWatch {
 public:
  // group/resource as in CollectionPath; selector is a label selector.
  ResourceWatch(KubeApi& api, std::string group, std::string resource, std::string ns,
                std::string selector);
  ~ResourceWatch();
  ResourceWatch(const ResourceWatch&) = delete;
  ResourceWatch& operator=(const ResourceWatch&) = delete;

  // The objects whose label key equals value; empty when none (or not synced yet).
  std::vector<nlohmann::json> WithLabel(const std::string& key, const std::string& value) const;
  bool synced() const;
  // Waits until the copy is synced; false on timeout.
  bool WaitSynced(std::chrono::milliseconds timeout) const;
  // Blocks until the copy changes after version `seen` (or timeout); returns the new version.
  // Version 0 is "before anything".
  uint64_t WaitForChange(uint64_t seen, std::chrono::milliseconds timeout) const;
  // The copy's version now (it grows with every change).
  uint64_t version() const;
  // Records an object krane just wrote, so a read right after sees it before its event comes.
  void Observe(const nlohmann::json& object);
  WatchCounters counters() const;

 private:
  void Run();
  Status List();
  // Applies one watch event line; false to end this watch (410 or a bad event).
  bool Apply(std::string_view line, bool* gone);
  static std::string KeyOf(const nlohmann::json& object);

  KubeApi& api_;
  const std::string group_, resource_, ns_, selector_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::map<std::string, nlohmann::json> objects_;  // by name
  std::string resource_version_;
  uint64_t version_ = 0;
  WatchCounters counters_;

  std::atomic<bool> stop_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::thread thread_;
};

}  // namespace slipway::krane::kubernetes
