#include "ctrl/partition_store.h"

#include <chrono>
#include <thread>

namespace slipway::ctrl {

int64_t PartitionStore::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
      .count();
}

Status PartitionStore::UpsertInstances(const std::string& deployment_id,
                                       const std::vector<InstanceRow>& rows) {
  if (rows.empty()) return Status::Ok();
  const int64_t now = NowMs();
  return db_.WithTransaction([&](db::Executor& tx) -> Status {
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
  });
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
  return db_.WithTransaction([&](db::Executor& tx) -> Status {
    for (const std::string& host : hostnames) {
      SLIPWAY_RETURN_IF_ERROR(
          tx.Exec("INSERT INTO gateway_routes (hostname, deployment_id, updated_at) "
                  "VALUES ($1, $2, $3) ON CONFLICT (hostname) DO UPDATE SET "
                  "deployment_id = excluded.deployment_id, updated_at = excluded.updated_at",
                  {host, deployment_id, now})
              .status());
    }
    return Status::Ok();
  });
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
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Status PartitionStore::RemoveDeployment(const std::string& deployment_id) {
  return db_.WithTransaction([&](db::Executor& tx) -> Status {
    SLIPWAY_RETURN_IF_ERROR(
        tx.Exec("DELETE FROM instances WHERE deployment_id = $1", {deployment_id}).status());
    return tx.Exec("DELETE FROM gateway_routes WHERE deployment_id = $1", {deployment_id}).status();
  });
}

}  // namespace slipway::ctrl
