// The operational endpoints (base/ops_endpoints.h) on net::HttpServer.
#pragma once

#include "base/ops_endpoints.h"
#include "net/http_server.h"

namespace slipway::net {

// Answers request when it is for /healthz, /readyz or /metrics and returns true; otherwise
// leaves the response alone and returns false.
bool ServeOpsEndpoint(const HttpRequest& request, ResponseWriter& response,
                      const OpsEndpoints& endpoints);

// A handler that answers the operational endpoints and passes everything else to inner.
// endpoints must outlive the handler.
HttpHandler WithOpsEndpoints(HttpHandler inner, const OpsEndpoints& endpoints);

}  // namespace slipway::net
