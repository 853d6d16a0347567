#include "ctrl/partition_store.h"

#include "db/change_notices.h"

#include <chrono>
#include <thread>

namespace slipway::ctrl {

// A committed change of routes or instances, announced to the gateways of this process.
Status PartitionStore::Announced(Status committed) {
  if (committed.ok()) db::NotifyChange(db_, db::kRoutesChangedTopic);
  return committed;
}

int64_t PartitionStore::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
      .count();
}

Status PartitionStore::UpsertInstances(const std::string& deployment_id,
                                       const std::vector<InstanceRow>& rows) {
  if (rows.empty()) return Status::Ok();
  const int64_t now = NowMs();
  return Announced(db_.WithTransaction([&](db::Executor& tx) -> Status {
    for (const InstanceRow& r : rows) {
      SLIPWAY_RETURN_IF_ERROR(
          tx.Exec("INSERT INTO instances (deployment_id, instance_id, address, status, reason, "
                  "updated_at) VALUES ($1, $2, $3, $4, $5, $6) "
                  "ON CONFLICT (deployment_id, instance_id) DO UPDATE SET "
                  "address = excluded.address, status = excluded.status, "
                  "reason = excluded.reason, updated_at = excluded.updated_at",
                  {deployment_id, r.instance_id, r.address, r.status, r.reason, now})
              .status());
    }
    return Status::Ok();
  }));
}

Result<int> PartitionStore::RefreshInstances(const std::string& deployment_id,
                                             const std::vector<InstanceRow>& rows) {
  const int64_t now = NowMs();
  int changed = 0;
  Status committed = db_.WithTransaction([&](db::Executor& tx) -> Status {
    changed = 0;
    for (const InstanceRow& r : rows) {
      SLIPWAY_ASSIGN_OR_RETURN(
          int64_t n,
          tx.Exec("UPDATE instances SET address = $3, status = $4, reason = $5, updated_at = $6 "
                  "WHERE deployment_id = $1 AND instance_id = $2 AND (address <> $3 OR "
                  "status <> $4 OR reason <> $5)",
                  {deployment_id, r.instance_id, r.address, r.status, r.reason, now}));
      changed += static_cast<int>(n);
    }
    return Status::Ok();
  });
  if (!committed.ok()) return committed;
  if (changed > 0) db::NotifyChange(db_, db::kRoutesChangedTopic);
  return changed;
}

Result<std::vector<InstanceRow>> PartitionStore::ListInstances(const std::string& deployment_id) {
  SLIPWAY_ASSIGN_OR_RETURN(auto rows,
                           db_.Query("SELECT instance_id, address, status, reason FROM instances "
                                     "WHERE deployment_id = $1 ORDER BY instance_id",
                                     {deployment_id}));
  std::vector<InstanceRow> out;
  for (const auto& r : rows) {
    out.push_back({r["instance_id"].AsText(), r["address"].AsText(), r["status"].AsText(),
                   r["reason"].AsText()});
  }
  return out;
}

Status PartitionStore::RouteHosts(const std::string& deployment_id,
                                  const std::vector<std::string>& hostnames) {
  const int64_t now = NowMs();
  return Announced(db_.WithTransaction([&](db::Executor& tx) -> Status {
    for (const std::string& host : hostnames) {
      SLIPWAY_RETURN_IF_ERROR(
          tx.Exec("INSERT INTO gateway_routes (hostname, deployment_id, updated_at) "
                  "VALUES ($1, $2, $3) ON CONFLICT (hostname) DO UPDATE SET "
                  "deployment_id = excluded.deployment_id, stopped = 0, "
                  "updated_at = excluded.updated_at",
                  {host, deployment_id, now})
              .status());
    }
    return Status::Ok();
  }));
}

Result<std::string> PartitionStore::RouteOf(const std::string& hostname) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto row,
      db_.QueryRow("SELECT deployment_id FROM gateway_routes WHERE hostname = $1", {hostname}));
  if (!row) return std::string();
  return (*row)["deployment_id"].AsText();
}

Result<std::vector<std::string>> PartitionStore::WaitForGateways(
    int64_t since_ms, std::chrono::milliseconds timeout) {
  constexpr int64_t kLiveWindowMs = 10'000;
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (true) {
    SLIPWAY_ASSIGN_OR_RETURN(
        auto rows, db_.Query("SELECT gateway_id FROM gateway_loads WHERE loaded_at > $1 AND "
                             "loaded_at <= $2 ORDER BY gateway_id",
                             {since_ms - kLiveWindowMs, since_ms}));
    std::vector<std::string> behind;
    for (const auto& r : rows) behind.push_back(r["gateway_id"].AsText());
    if (behind.empty() || std::chrono::steady_clock::now() >= give_up) return behind;
    // A gateway that reloaded on the change's own notice began that load in the same
    // millisecond as since (or before it), which cannot count as after it. Once the clock has
    // passed since, asking for one more load gives every gateway one that counts, without
    // waiting for its periodic reload; it is asked again on each look while one is behind.
    if (NowMs() > since_ms) db::NotifyChange(db_, db::kRoutesChangedTopic);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Status PartitionStore::MarkStopped(const std::string& deployment_id, bool stopped) {
  return Announced(db_.WithTransaction([&](db::Executor& tx) -> Status {
    if (stopped) {
      SLIPWAY_RETURN_IF_ERROR(
          tx.Exec("DELETE FROM instances WHERE deployment_id = $1", {deployment_id}).status());
    }
    return tx
        .Exec("UPDATE gateway_routes SET stopped = $2, updated_at = $3 WHERE deployment_id = $1",
              {deployment_id, static_cast<int64_t>(stopped ? 1 : 0), NowMs()})
        .status();
  }));
}

Status PartitionStore::RemoveDeployment(const std::string& deployment_id) {
  return Announced(db_.WithTransaction([&](db::Executor& tx) -> Status {
    SLIPWAY_RETURN_IF_ERROR(
        tx.Exec("DELETE FROM instances WHERE deployment_id = $1", {deployment_id}).status());
    return tx.Exec("DELETE FROM gateway_routes WHERE deployment_id = $1", {deployment_id}).status();
  }));
}

}  // namespace slipway::ctrl
