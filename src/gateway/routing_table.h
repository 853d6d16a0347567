// The gateway's routing table: host name -> the deployment it is routed to -> that deployment's
// RUNNING instances. A table is an immutable snapshot of the partition database's
// `gateway_routes` and `instances`, built in one statement so it never mixes two states of the
// database; the gateway swaps whole tables, so a request sees either the old routes or the new.
//
// Thread-safety: a RoutingTable is immutable once built and may be read from any number of
// threads. The round-robin cursor of a backend is atomic and carried over from one table to the
// next, so refreshing the table does not restart the rotation.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "db/database.h"

namespace slipway::gateway {

// Where one deployment's traffic goes.
struct Backend {
  std::string deployment_id;
  // Addresses ("127.0.0.1:41234") of its RUNNING instances, ordered by instance id. Empty when
  // the deployment has none ready: its hosts answer 503.
  std::vector<std::string> addresses;
  // The retention policy stopped its instances: its hosts answer 503 saying how to start it
  // again (a rollback to it).
  bool stopped = false;
  // Round-robin position, shared by successive tables while the deployment stays routed.
  std::shared_ptr<std::atomic<uint64_t>> cursor = std::make_shared<std::atomic<uint64_t>>(0);

  // The instance to try first for the next request, then the ones after it in rotation order.
  // Each call advances the rotation by one.
  std::vector<std::string_view> NextInRotation(size_t max) const;
};

class RoutingTable {
 public:
  // One row of the routing query: a routed host and, when it has one, a RUNNING instance.
  struct Entry {
    std::string hostname;
    std::string deployment_id;
    std::string instance_id;  // empty: the deployment has no RUNNING instance
    std::string address;
    bool stopped = false;  // the deployment's instances were stopped by the retention policy
  };

  RoutingTable() = default;

  // Builds a table from entries; previous (may be null) lends its round-robin cursors to the
  // deployments that are still routed.
  static RoutingTable Build(const std::vector<Entry>& entries, const RoutingTable* previous);

  // The backend for a host already canonical (CanonicalHost); null when the host is not routed.
  const Backend* Find(std::string_view host) const;

  size_t host_count() const { return hosts_.size(); }
  size_t deployment_count() const { return backends_.size(); }
  size_t instance_count() const;
  // Whether both tables route every host to the same deployment and instances.
  bool SameRoutes(const RoutingTable& other) const;

 private:
  std::unordered_map<std::string, std::shared_ptr<const Backend>> hosts_;
  std::unordered_map<std::string, std::shared_ptr<const Backend>> backends_;  // by deployment
};

// Reads the routing table from the partition database in one statement.
Result<std::vector<RoutingTable::Entry>> LoadRoutingEntries(db::Executor& partition);

// The host a request is routed by, from its Host header: port removed, lowercased, a trailing
// dot dropped ("Hello-Prod.LOCALHOST.:8080" -> "hello-prod.localhost"). nullopt when the value
// is empty or not a host ("", ":80", "a b").
std::optional<std::string> CanonicalHost(std::string_view host_header);

}  // namespace slipway::gateway
