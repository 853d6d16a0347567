// Store methods for a project's environment variables (table env_vars). The store keeps what
// it is given: a secret arrives here already sealed (app_env.h) and leaves sealed.
#include "ctrl/store.h"

namespace slipway::ctrl {

Status Store::SetEnvVar(const std::string& project_id, const EnvVarRecord& var) {
  return db_
      .Exec(
          "INSERT INTO env_vars (project_id, environment, name, secret, value, updated_at) "
          "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project_id, environment, name) DO "
          "UPDATE SET secret = excluded.secret, value = excluded.value, "
          "updated_at = excluded.updated_at",
          {project_id, var.environment, var.name, static_cast<int64_t>(var.secret ? 1 : 0),
           var.value, NowMs()})
      .status();
}

Result<std::vector<EnvVarRecord>> Store::ListEnvVars(const std::string& project_id) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT environment, name, secret, value, updated_at FROM env_vars "
                           "WHERE project_id = $1 ORDER BY environment, name",
                           {project_id}));
  std::vector<EnvVarRecord> out;
  for (const auto& r : rows) {
    out.push_back({r["environment"].AsText(), r["name"].AsText(), r["secret"].AsInt() != 0,
                   r["value"].AsText(), r["updated_at"].AsInt()});
  }
  return out;
}

Result<bool> Store::UnsetEnvVar(const std::string& project_id, const std::string& environment,
                                const std::string& name) {
  SLIPWAY_ASSIGN_OR_RETURN(int64_t n, db_.Exec("DELETE FROM env_vars WHERE project_id = $1 AND "
                                               "environment = $2 AND name = $3",
                                               {project_id, environment, name}));
  return n > 0;
}

}  // namespace slipway::ctrl
