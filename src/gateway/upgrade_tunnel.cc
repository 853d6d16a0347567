#include "gateway/upgrade_tunnel.h"

#include "net/http_wire.h"

namespace slipway::gateway {

bool IsUpgradeRequest(const net::ProxyRequest& request) {
  if (request.method != "GET" || request.has_body()) return false;
  if (request.headers.Get("Upgrade").value_or("").empty()) return false;
  return net::NamedByConnection(request.headers, "upgrade");
}

}  // namespace slipway::gateway
