// Keeps the gateway's routing table current: reloads it from the partition database on an
// interval in a background thread and publishes each new table with one atomic swap, so the
// request path only ever loads a pointer and never waits for the database.
//
// Promises:
//  - Start fails when the first load fails (a gateway that cannot read its routes says so at
//    start instead of answering 404 to everything);
//  - a route change committed to the database is served within one interval plus one load, and
//    one announced (db::kRoutesChangedTopic) by this process, or with PostgreSQL by any process,
//    within one load;
//  - a failed reload keeps the last good table, logs once when failures start and once when
//    they end;
//  - ForThisThread() is safe from any thread and never blocks on a reload;
//  - after each load it records in gateway_loads (under its own random id) the wall-clock time
//    at which that load began, so ctrl can wait until a route change is served everywhere;
//    Stop() removes the record (a gateway that dies without it ages out of ctrl's view).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/status.h"
#include "db/change_notices.h"
#include "db/database.h"
#include "gateway/routing_table.h"

namespace slipway::gateway {

class RouteRefresher {
 public:
  // partition must outlive the refresher.
  static Result<std::unique_ptr<RouteRefresher>> Start(db::Database& partition,
                                                       std::chrono::milliseconds interval);
  ~RouteRefresher();
  RouteRefresher(const RouteRefresher&) = delete;
  RouteRefresher& operator=(const RouteRefresher&) = delete;

  // The table to route a request with: this thread's reference to the current one, taken again
  // only after a reload, so the request path shares no reference count with other threads.
  // Valid until this thread calls it again.
  const RoutingTable& ForThisThread() const;
  // This gateway's id in gateway_loads ("gw_<random>").
  const std::string& id() const { return id_; }
  // Successful loads so far (the first one included).
  uint64_t loads() const { return loads_.load(); }
  // Stops the background thread; the last table stays readable. Idempotent.
  void Stop();

 private:
  RouteRefresher(db::Database& partition, std::chrono::milliseconds interval);
  Status Reload();
  void Run();

  db::Database& partition_;
  const std::chrono::milliseconds interval_;
  const std::string id_;
  const uint64_t serial_;  // unique in the process: whose table a thread's reference is
  std::atomic<std::shared_ptr<const RoutingTable>> table_;
  std::atomic<uint64_t> generation_{0};  // one more after each swap of table_
  std::atomic<uint64_t> loads_{0};
  bool failing_ = false;  // only the refresh thread touches it after Start

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool changed_ = false;  // a change notice arrived since the last load began
  std::unique_ptr<db::ChangeSubscription> changes_;
  std::thread thread_;
};

}  // namespace slipway::gateway
