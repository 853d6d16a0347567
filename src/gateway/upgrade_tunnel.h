// Which requests the gateway relays as a tunnel (WebSocket: "Connection: Upgrade" +
// "Upgrade: websocket"). The engine (net/proxy_server.h) sends such a request over a
// connection of its own and, after the instance's "101 Switching Protocols", copies bytes both
// ways until either side closes; any other answer is relayed as an ordinary response.
#pragma once

#include "net/proxy_server.h"

namespace slipway::gateway {

// Whether the request asks to switch protocols (a Connection token "upgrade" and an Upgrade
// field) and can be tunnelled (a GET without a body).
bool IsUpgradeRequest(const net::ProxyRequest& request);

}  // namespace slipway::gateway
