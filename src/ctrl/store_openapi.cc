// Store methods for the OpenAPI contract check (table openapi_checks), apart from store.cc so
// the deployment queries there stay as they are.
#include "ctrl/store.h"

namespace slipway::ctrl {

Result<std::optional<OpenApiSpecRecord>> Store::FindOpenApiSpec(const std::string& deployment_id) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto row, db_.QueryRow("SELECT deployment_id, path, content_type, spec, scraped_at "
                             "FROM openapi_specs WHERE deployment_id = $1",
                             {deployment_id}));
  if (!row) return std::optional<OpenApiSpecRecord>();
  const db::Row& r = *row;
  return std::optional<OpenApiSpecRecord>(
      OpenApiSpecRecord{r["deployment_id"].AsText(), r["path"].AsText(), r["content_type"].AsText(),
                        r["spec"].AsText(), r["scraped_at"].AsInt()});
}

Result<OpenApiCheckRecord> Store::GetOpenApiCheck(const std::string& deployment_id) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto row, db_.QueryRow("SELECT fail_on_breaking, checked, base_deployment_id, has_breaking, "
                             "held_back, note FROM openapi_checks WHERE deployment_id = $1",
                             {deployment_id}));
  OpenApiCheckRecord c;
  c.deployment_id = deployment_id;
  if (!row) return c;
  const db::Row& r = *row;
  c.fail_on_breaking = r["fail_on_breaking"].AsInt() != 0;
  c.checked = r["checked"].AsInt() != 0;
  c.base_deployment_id = r["base_deployment_id"].AsText();
  c.has_breaking = r["has_breaking"].AsInt() != 0;
  c.held_back = r["held_back"].AsInt() != 0;
  c.note = r["note"].AsText();
  return c;
}

Status Store::SaveOpenApiCheck(const OpenApiCheckRecord& c) {
  return Announced(
      c.deployment_id,
      db_.Exec(
             "INSERT INTO openapi_checks (deployment_id, fail_on_breaking, checked, "
             "base_deployment_id, has_breaking, held_back, note, updated_at) "
             "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (deployment_id) DO UPDATE SET "
             "fail_on_breaking = excluded.fail_on_breaking, checked = excluded.checked, "
             "base_deployment_id = excluded.base_deployment_id, has_breaking = "
             "excluded.has_breaking, "
             "held_back = excluded.held_back, note = excluded.note, updated_at = "
             "excluded.updated_at",
             {c.deployment_id, int64_t{c.fail_on_breaking}, int64_t{c.checked},
              c.base_deployment_id, int64_t{c.has_breaking}, int64_t{c.held_back}, c.note, NowMs()})
          .status());
}

}  // namespace slipway::ctrl
