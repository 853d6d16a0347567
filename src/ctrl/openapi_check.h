// The OpenAPI contract check a deployment runs before it is routed: its scraped spec against the
// spec of the deployment live in its environment now, and whether fail_on_breaking holds the
// environment's hosts back. Also the one diff of two deployments' specs that
// OpenApiService.GetOpenApiDiff answers with.
#pragma once

#include <string>

#include "ctrl/openapi/diff.h"
#include "ctrl/store.h"

namespace slipway::ctrl {

// Compares the deployment's spec with its environment's live deployment's, saves and returns the
// outcome. Never fails for a missing spec or an unreadable one: the note says why nothing was
// compared, and nothing is held back.
Result<OpenApiCheckRecord> CheckOpenApiContract(Store& store, const DeploymentRecord& deployment);

// The diff of two deployments' specs; NotFound (a sentence naming the deployment) when either
// has none, InvalidArgument when one cannot be read as OpenAPI.
Result<openapi::ApiDiff> DiffDeploymentSpecs(Store& store, const std::string& old_deployment_id,
                                             const std::string& new_deployment_id);

}  // namespace slipway::ctrl
