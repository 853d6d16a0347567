// TokenService: the caller's workspace's API tokens (create with a scope and an expiry, list,
// revoke). Creating and revoking need a deploy token; a read token may list.
#pragma once

#include "ctrl/services.h"

namespace slipway::ctrl {

void RegisterTokenService(net::ConnectRouter& router, const ServiceDeps& deps);

}  // namespace slipway::ctrl
