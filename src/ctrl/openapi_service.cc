#include "ctrl/openapi_service.h"

#include "ctrl/openapi_check.h"
#include "slipway/ctrl/v1/openapi.pb.h"

namespace slipway::ctrl {
namespace {

namespace pb = slipway::ctrl::v1;

constexpr std::string_view kOpenApiService = "slipway.ctrl.v1.OpenApiService";

void CountsToProto(const openapi::Counts& c, pb::OpenApiCounts* out) {
  out->set_added(c.added);
  out->set_deleted(c.deleted);
  out->set_modified(c.modified);
}

}  // namespace

void RegisterOpenApiService(net::ConnectRouter& router, const ServiceDeps& deps) {
  const ServiceDeps* d = &deps;
  router.Unary<pb::GetOpenApiDiffRequest, pb::GetOpenApiDiffResponse>(
      net::ConnectProcedure(kOpenApiService, "GetOpenApiDiff"),
      [d](net::CallContext& ctx, const pb::GetOpenApiDiffRequest& req,
          pb::GetOpenApiDiffResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(
            std::string ws, Authenticate(*d, ctx, Access::kRead, "GetOpenApiDiff"));
        if (req.old_deployment_id().empty() || req.new_deployment_id().empty()) {
          return Status::InvalidArgument(
              "name both deployments: old_deployment_id and new_deployment_id");
        }
        // Both must be the caller's: GetDeployment is NotFound for another workspace's.
        SLIPWAY_RETURN_IF_ERROR(d->store->GetDeployment(ws, req.old_deployment_id()).status());
        SLIPWAY_RETURN_IF_ERROR(d->store->GetDeployment(ws, req.new_deployment_id()).status());
        SLIPWAY_ASSIGN_OR_RETURN(
            openapi::ApiDiff diff,
            DiffDeploymentSpecs(*d->store, req.old_deployment_id(), req.new_deployment_id()));
        CountsToProto(diff.summary.paths, resp->mutable_summary()->mutable_paths());
        CountsToProto(diff.summary.operations, resp->mutable_summary()->mutable_operations());
        CountsToProto(diff.summary.schemas, resp->mutable_summary()->mutable_schemas());
        resp->set_has_breaking_changes(diff.has_breaking_changes);
        for (const auto& c : diff.changes) {
          auto* out = resp->add_changes();
          out->set_kind(c.kind);
          out->set_level(static_cast<pb::ChangeLevel>(static_cast<int>(c.level)));
          out->set_path(c.path);
          out->set_method(c.method);
          out->set_operation_id(c.operation_id);
          out->set_text(c.text);
        }
        return Status::Ok();
      });
}

}  // namespace slipway::ctrl
