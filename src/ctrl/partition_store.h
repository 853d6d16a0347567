// ctrl's writes to the partition database, which the gateway reads (CONTRACTS.md):
//   instances(deployment_id, instance_id, address, status, reason, updated_at)
//   gateway_routes(hostname PK, deployment_id, updated_at)
//
// Promises: every method is one transaction, idempotent (the same call twice leaves the same
// rows), so a workflow step that runs again after a crash repeats it safely. RouteHosts moves
// all the given hosts to one deployment at once: a reader sees either the old mapping of every
// host or the new one. Thread-safe (the Database is).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "db/database.h"

namespace slipway::ctrl {

struct InstanceRow {
  std::string instance_id;  // "<deployment_id>-<i>"
  std::string address;      // "127.0.0.1:41234"
  std::string status;       // PENDING, RUNNING, TERMINATING, FAILED (krane's names)
  std::string reason;
};

class PartitionStore {
 public:
  explicit PartitionStore(db::Database& db, Clock& clock = SystemClock())
      : db_(db), clock_(clock) {}

  // Inserts or updates the deployment's instances as krane reported them.
  Status UpsertInstances(const std::string& deployment_id, const std::vector<InstanceRow>& rows);
  // Updates the rows of the deployment's instances that exist, as krane reports them now; never
  // adds a row, so a deployment stopped or removed meanwhile (its rows forgotten) stays so.
  // Announced only when a row changed. Returns how many rows changed.
  Result<int> RefreshInstances(const std::string& deployment_id, const std::vector<InstanceRow>& rows);
  Result<std::vector<InstanceRow>> ListInstances(const std::string& deployment_id);

  // Points every host at deployment_id, in one transaction.
  Status RouteHosts(const std::string& deployment_id, const std::vector<std::string>& hostnames);
  // The deployment a host points at; empty when it has no route.
  Result<std::string> RouteOf(const std::string& hostname);

  // Blocks until every live gateway (one that loaded its routes in the last 10 s) serves a table
  // whose load began after since_ms (a load begun in the same millisecond may predate the
  // change, so it does not count), or until timeout; returns the ids of gateways still behind
  // (empty when all caught up). Gateways record their loads in gateway_loads.
  Result<std::vector<std::string>> WaitForGateways(int64_t since_ms,
                                                   std::chrono::milliseconds timeout);
  int64_t NowMs() const;

  // stopped: forgets the deployment's instance rows and marks its routes stopped (the gateway
  // says so on them); false: its routes serve normally again.
  Status MarkStopped(const std::string& deployment_id, bool stopped);

  // Forgets a deployment that will never serve: its instance rows and any route to it.
  Status RemoveDeployment(const std::string& deployment_id);

 private:
  Status Announced(Status committed);
  db::Database& db_;
  Clock& clock_;
};

}  // namespace slipway::ctrl
