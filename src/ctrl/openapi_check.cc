#include "ctrl/openapi_check.h"

#include <fmt/format.h>

namespace slipway::ctrl {

Result<openapi::ApiDiff> DiffDeploymentSpecs(Store& store, const std::string& old_deployment_id,
                                             const std::string& new_deployment_id) {
  SLIPWAY_ASSIGN_OR_RETURN(auto old_spec, store.FindOpenApiSpec(old_deployment_id));
  if (!old_spec) {
    return Status::NotFound(fmt::format(
        "deployment {} has no OpenAPI spec to compare (its app served none at /openapi.yaml or "
        "/openapi.json)",
        old_deployment_id));
  }
  SLIPWAY_ASSIGN_OR_RETURN(auto new_spec, store.FindOpenApiSpec(new_deployment_id));
  if (!new_spec) {
    return Status::NotFound(fmt::format(
        "deployment {} has no OpenAPI spec to compare (its app served none at /openapi.yaml or "
        "/openapi.json)",
        new_deployment_id));
  }
  return openapi::DiffOpenApi(old_spec->spec, new_spec->spec);
}

Result<OpenApiCheckRecord> CheckOpenApiContract(Store& store, const DeploymentRecord& d) {
  SLIPWAY_ASSIGN_OR_RETURN(OpenApiCheckRecord check, store.GetOpenApiCheck(d.id));
  check.checked = true;
  check.has_breaking = false;
  check.held_back = false;
  SLIPWAY_ASSIGN_OR_RETURN(std::string live, store.LiveDeployment(d.project_id, d.environment));
  check.base_deployment_id = live == d.id ? "" : live;
  if (check.base_deployment_id.empty()) {
    check.note = fmt::format("no deployment was live in {} to compare the API with", d.environment);
  } else {
    auto diff = DiffDeploymentSpecs(store, check.base_deployment_id, d.id);
    if (!diff.ok()) {
      if (diff.status().code() != Code::kNotFound &&
          diff.status().code() != Code::kInvalidArgument) {
        return diff.status();
      }
      check.note = diff.status().message();
      check.base_deployment_id.clear();
    } else {
      check.has_breaking = diff->has_breaking_changes;
      check.held_back = check.fail_on_breaking && check.has_breaking;
      check.note =
          fmt::format("{} breaking, {} warning and {} other API changes against {}", diff->breaking,
                      diff->warnings, diff->changes.size() - diff->breaking - diff->warnings, live);
      if (check.held_back) {
        check.note += fmt::format(
            "; fail_on_breaking keeps {}'s hosts on {} (this deployment answers on its own host)",
            d.environment, live);
      }
    }
  }
  SLIPWAY_RETURN_IF_ERROR(store.SaveOpenApiCheck(check));
  return check;
}

}  // namespace slipway::ctrl
