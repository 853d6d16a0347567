// OpenApiService: the contract diff of two deployments' scraped OpenAPI specs, inside the
// caller's workspace.
#pragma once

#include "ctrl/services.h"

namespace slipway::ctrl {

void RegisterOpenApiService(net::ConnectRouter& router, const ServiceDeps& deps);

}  // namespace slipway::ctrl
