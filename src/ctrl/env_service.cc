#include "ctrl/env_service.h"

#include <fmt/format.h>

#include "slipway/ctrl/v1/env.pb.h"

namespace slipway::ctrl {
namespace {

namespace pb = slipway::ctrl::v1;

constexpr std::string_view kEnvService = "slipway.ctrl.v1.EnvService";
// Environment variables are for settings, not files: a value past this is refused.
constexpr size_t kMaxValueBytes = 64 * 1024;

// What a client may see of a variable: never a secret's value, sealed or not.
void EnvVarToProto(const EnvVarRecord& v, pb::EnvVar* out) {
  out->set_name(v.name);
  out->set_environment(v.environment);
  out->set_secret(v.secret);
  if (!v.secret) out->set_value(v.value);
  out->set_updated_at_ms(v.updated_at_ms);
}

Status CheckEnvScope(const std::string& environment) {
  return environment.empty() ? Status::Ok() : ValidateEnvironmentName(environment);
}

// The project a variable call names; NotFound when the workspace has no such project (reads and
// unsets never create one).
Result<Project> ExistingProject(const ServiceDeps& d, const std::string& ws,
                                const std::string& name) {
  SLIPWAY_RETURN_IF_ERROR(ValidateProjectName(name));
  SLIPWAY_ASSIGN_OR_RETURN(auto project, d.store->FindProject(ws, name));
  if (!project) return Status::NotFound("no project " + name + " in this workspace");
  return *project;
}

}  // namespace

void RegisterEnvService(net::ConnectRouter& router, const ServiceDeps& deps) {
  const ServiceDeps* d = &deps;
  router.Unary<pb::SetEnvRequest, pb::SetEnvResponse>(
      net::ConnectProcedure(kEnvService, "SetEnv"),
      [d](net::CallContext& ctx, const pb::SetEnvRequest& req, pb::SetEnvResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws, Authenticate(*d, ctx, Access::kChange, "SetEnv"));
        SLIPWAY_RETURN_IF_ERROR(ValidateProjectName(req.project()));
        SLIPWAY_RETURN_IF_ERROR(CheckEnvScope(req.environment()));
        SLIPWAY_RETURN_IF_ERROR(ValidateEnvVarName(req.name()));
        if (req.value().size() > kMaxValueBytes) {
          return Status::InvalidArgument(fmt::format(
              "the value of {} is {} bytes; a variable holds at most {} (put larger data in a "
              "file of the image or an object store)",
              req.name(), req.value().size(), kMaxValueBytes));
        }
        if (req.value().find('\0') != std::string::npos) {
          return Status::InvalidArgument("the value of " + req.name() +
                                         " holds a NUL byte, which no environment variable can");
        }
        // Refused before the project is made, so a control plane without a key changes nothing.
        if (req.secret() && !d->secrets->has_key()) {
          return d->secrets->Seal("", "", req.name(), "").status();
        }
        SLIPWAY_ASSIGN_OR_RETURN(Project project, d->store->EnsureProject(ws, req.project()));
        EnvVarRecord v{req.environment(), req.name(), req.secret(), req.value(), 0};
        if (v.secret) {
          SLIPWAY_ASSIGN_OR_RETURN(
              v.value, d->secrets->Seal(project.id, v.environment, v.name, req.value()));
        }
        SLIPWAY_RETURN_IF_ERROR(d->store->SetEnvVar(project.id, v));
        v.updated_at_ms = d->store->NowMs();
        EnvVarToProto(v, resp->mutable_var());
        return Status::Ok();
      });

  router.Unary<pb::ListEnvRequest, pb::ListEnvResponse>(
      net::ConnectProcedure(kEnvService, "ListEnv"),
      [d](net::CallContext& ctx, const pb::ListEnvRequest& req,
          pb::ListEnvResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws, Authenticate(*d, ctx, Access::kRead, "ListEnv"));
        SLIPWAY_ASSIGN_OR_RETURN(Project project, ExistingProject(*d, ws, req.project()));
        SLIPWAY_ASSIGN_OR_RETURN(auto vars, d->store->ListEnvVars(project.id));
        for (const auto& v : vars) EnvVarToProto(v, resp->add_vars());
        return Status::Ok();
      });

  router.Unary<pb::UnsetEnvRequest, pb::UnsetEnvResponse>(
      net::ConnectProcedure(kEnvService, "UnsetEnv"),
      [d](net::CallContext& ctx, const pb::UnsetEnvRequest& req, pb::UnsetEnvResponse*) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws,
                                 Authenticate(*d, ctx, Access::kChange, "UnsetEnv"));
        SLIPWAY_RETURN_IF_ERROR(CheckEnvScope(req.environment()));
        SLIPWAY_RETURN_IF_ERROR(ValidateEnvVarName(req.name()));
        SLIPWAY_ASSIGN_OR_RETURN(Project project, ExistingProject(*d, ws, req.project()));
        SLIPWAY_ASSIGN_OR_RETURN(bool removed,
                                 d->store->UnsetEnvVar(project.id, req.environment(), req.name()));
        if (!removed) {
          return Status::NotFound(
              fmt::format("project {} has no variable {}{} (`slipway env list` shows them)",
                          project.name, req.name(),
                          req.environment().empty() ? " for every environment"
                                                    : " in environment " + req.environment()));
        }
        return Status::Ok();
      });
}

}  // namespace slipway::ctrl
