#include "gateway/routing_table.h"

#include <algorithm>
#include <map>

#include "net/http.h"

namespace slipway::gateway {

std::vector<std::string_view> Backend::NextInRotation(size_t max) const {
  std::vector<std::string_view> out;
  if (addresses.empty() || max == 0) return out;
  uint64_t start = cursor->fetch_add(1, std::memory_order_relaxed);
  size_t n = std::min(max, addresses.size());
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(addresses[(start + i) % addresses.size()]);
  return out;
}

RoutingTable RoutingTable::Build(const std::vector<Entry>& entries, const RoutingTable* previous) {
  // Deployment -> its instances (by instance id, so the rotation order is stable), and the
  // hosts routed to it.
  std::map<std::string, std::map<std::string, std::string>> instances;
  std::map<std::string, std::vector<std::string>> hosts;
  std::map<std::string, bool> stopped;
  for (const Entry& e : entries) {
    if (e.stopped) stopped[e.deployment_id] = true;
    auto& of_deployment = instances[e.deployment_id];
    if (!e.instance_id.empty() && !e.address.empty()) of_deployment[e.instance_id] = e.address;
    auto& routed = hosts[e.deployment_id];
    std::string host = net::ToLower(e.hostname);
    if (routed.empty() || routed.back() != host) routed.push_back(std::move(host));
  }

  RoutingTable table;
  for (auto& [deployment, by_id] : instances) {
    auto backend = std::make_shared<Backend>();
    backend->deployment_id = deployment;
    backend->stopped = stopped[deployment];
    for (auto& [id, address] : by_id) backend->addresses.push_back(address);
    if (previous != nullptr) {
      if (auto it = previous->backends_.find(deployment); it != previous->backends_.end()) {
        backend->cursor = it->second->cursor;
      }
    }
    for (const std::string& host : hosts[deployment]) table.hosts_[host] = backend;
    table.backends_[deployment] = std::move(backend);
  }
  return table;
}

const Backend* RoutingTable::Find(std::string_view host) const {
  auto it = hosts_.find(std::string(host));
  return it == hosts_.end() ? nullptr : it->second.get();
}

size_t RoutingTable::instance_count() const {
  size_t n = 0;
  for (const auto& [deployment, backend] : backends_) n += backend->addresses.size();
  return n;
}

bool RoutingTable::SameRoutes(const RoutingTable& other) const {
  if (hosts_.size() != other.hosts_.size()) return false;
  for (const auto& [host, backend] : hosts_) {
    const Backend* theirs = other.Find(host);
    if (theirs == nullptr || theirs->deployment_id != backend->deployment_id ||
        theirs->addresses != backend->addresses || theirs->stopped != backend->stopped) {
      return false;
    }
  }
  return true;
}

Result<std::vector<RoutingTable::Entry>> LoadRoutingEntries(db::Executor& partition) {
  // One statement: hosts and instances come from the same snapshot of the database, so a host
  // switched to a new deployment in one transaction is never seen with the old one's instances.
  static constexpr std::string_view kQuery =
      "SELECT r.hostname, r.deployment_id, i.instance_id, i.address, r.stopped "
      "FROM gateway_routes r LEFT JOIN instances i "
      "ON i.deployment_id = r.deployment_id AND i.status = 'RUNNING' AND i.address <> '' "
      "ORDER BY r.hostname, i.instance_id";
  SLIPWAY_ASSIGN_OR_RETURN(db::Rows rows, partition.Query(kQuery));
  std::vector<RoutingTable::Entry> entries;
  entries.reserve(rows.size());
  for (const db::Row& row : rows) {
    entries.push_back(
        {row[0].AsText(), row[1].AsText(), row[2].AsText(), row[3].AsText(), row[4].AsInt() != 0});
  }
  return entries;
}

std::optional<std::string> CanonicalHost(std::string_view host_header) {
  std::string_view host = host_header;
  while (!host.empty() && (host.front() == ' ' || host.front() == '\t')) host.remove_prefix(1);
  while (!host.empty() && (host.back() == ' ' || host.back() == '\t')) host.remove_suffix(1);
  if (host.starts_with('[')) {
    // An IPv6 literal: "[::1]:8080" -> "[::1]".
    size_t close = host.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return std::nullopt;
    host = host.substr(0, close + 1);
  } else if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    std::string_view port = host.substr(colon + 1);
    if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    host = host.substr(0, colon);
  }
  if (host.ends_with('.')) host.remove_suffix(1);
  if (host.empty()) return std::nullopt;
  for (char c : host) {
    auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u >= 0x7f || c == '/' || c == '?' || c == '#' || c == '@') return std::nullopt;
  }
  return net::ToLower(host);
}

}  // namespace slipway::gateway
