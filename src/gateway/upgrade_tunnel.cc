#include "gateway/upgrade_tunnel.h"

#include "gateway/header_fields.h"

namespace slipway::gateway {

bool IsUpgradeRequest(const net::ProxyRequest& request) {
  if (request.method != "GET" || request.has_body()) return false;
  if (request.headers.GetOr("Upgrade", "").empty()) return false;
  for (const std::string& token : ConnectionTokens(request.headers)) {
    if (net::EqualsIgnoreCase(token, "upgrade")) return true;
  }
  return false;
}

}  // namespace slipway::gateway
