// Store methods for API tokens (table api_tokens): issuing, authenticating, listing and
// revoking. Only a token's SHA-256 is stored; the lookup is by that hash, so no comparison ever
// touches a stored plaintext.
#include <fmt/format.h>

#include <ctime>

#include "base/crypto.h"
#include "base/ids.h"
#include "ctrl/store.h"

namespace slipway::ctrl {
namespace {

constexpr std::string_view kTokenColumns =
    "id, name, scope, created_at, expires_at, revoked_at, last_used_at";

TokenRecord TokenFromRow(const db::Row& r) {
  TokenRecord t;
  t.id = r["id"].AsText();
  t.name = r["name"].AsText();
  t.scope = r["scope"].AsText();
  t.created_at_ms = r["created_at"].AsInt();
  t.expires_at_ms = r["expires_at"].is_null() ? 0 : r["expires_at"].AsInt();
  t.revoked_at_ms = r["revoked_at"].is_null() ? 0 : r["revoked_at"].AsInt();
  t.last_used_at_ms = r["last_used_at"].is_null() ? 0 : r["last_used_at"].AsInt();
  return t;
}

// "2026-12-02 00:41 UTC": the time a person reads in a refusal.
std::string UtcMinute(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

constexpr std::string_view kGetANewToken =
    "create a new one with `slipway token create` (using a token that still works, or the one "
    "`slipway dev` wrote) and pass it as --token or SLIPWAY_TOKEN";

}  // namespace

Result<std::pair<TokenRecord, std::string>> Store::CreateToken(const std::string& workspace_id,
                                                               const std::string& name,
                                                               const std::string& scope,
                                                               int64_t expires_at_ms) {
  if (scope != "deploy" && scope != "read") {
    return Status::InvalidArgument(fmt::format(
        "token scope \"{}\" is not one of deploy (everything) and read (look, change nothing)",
        scope));
  }
  TokenRecord t;
  t.id = NewId("tok");
  t.name = name;
  t.scope = scope;
  t.created_at_ms = NowMs();
  t.expires_at_ms = expires_at_ms;
  std::string token = "slw_" + RandomHex(24);
  SLIPWAY_RETURN_IF_ERROR(
      db_.Exec("INSERT INTO api_tokens (id, workspace_id, token_sha256, name, scope, created_at, "
               "expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
               {t.id, workspace_id, Sha256Hex(token), name, scope, t.created_at_ms,
                expires_at_ms > 0 ? db::Value(expires_at_ms) : db::Value()})
          .status());
  return std::make_pair(t, token);
}

Result<std::string> Store::IssueToken(const std::string& workspace_id,
                                      const std::string& token_name) {
  SLIPWAY_ASSIGN_OR_RETURN(auto issued, CreateToken(workspace_id, token_name, "deploy", 0));
  return issued.second;
}

Result<Caller> Store::Authenticate(const std::string& token) {
  if (token.empty()) {
    return Status::Unauthenticated(
        "no API token: send \"Authorization: Bearer <token>\" (the CLI reads SLIPWAY_TOKEN or the "
        "file `slipway dev` writes)");
  }
  SLIPWAY_ASSIGN_OR_RETURN(auto row,
                           db_.QueryRow(fmt::format("SELECT workspace_id, {} FROM api_tokens WHERE "
                                                    "token_sha256 = $1",
                                                    kTokenColumns),
                                        {Sha256Hex(token)}));
  if (!row) return Status::Unauthenticated("the API token is not valid (check SLIPWAY_TOKEN)");
  TokenRecord t = TokenFromRow(*row);
  const int64_t now = NowMs();
  if (t.revoked_at_ms > 0) {
    return Status::Unauthenticated(fmt::format("the API token {} was revoked at {}: {}", t.id,
                                               UtcMinute(t.revoked_at_ms), kGetANewToken));
  }
  if (t.expires_at_ms > 0 && now >= t.expires_at_ms) {
    return Status::Unauthenticated(fmt::format("the API token {} expired at {}: {}", t.id,
                                               UtcMinute(t.expires_at_ms), kGetANewToken));
  }
  // At most one write a minute per token: last_used_at is for people, not an audit log.
  if (now - t.last_used_at_ms > 60 * 1000) {
    (void)db_.Exec("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1", {t.id, now});
  }
  return Caller{(*row)["workspace_id"].AsText(), t.id, t.scope};
}

Result<std::string> Store::WorkspaceForToken(const std::string& token) {
  SLIPWAY_ASSIGN_OR_RETURN(Caller caller, Authenticate(token));
  return caller.workspace_id;
}

Result<std::vector<TokenRecord>> Store::ListTokens(const std::string& workspace_id) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto rows, db_.Query(fmt::format("SELECT {} FROM api_tokens WHERE workspace_id = $1 "
                                       "ORDER BY created_at DESC, id",
                                       kTokenColumns),
                           {workspace_id}));
  std::vector<TokenRecord> out;
  for (const auto& r : rows) out.push_back(TokenFromRow(r));
  return out;
}

Result<TokenRecord> Store::RevokeToken(const std::string& workspace_id,
                                       const std::string& token_id) {
  SLIPWAY_RETURN_IF_ERROR(
      db_.Exec("UPDATE api_tokens SET revoked_at = $3 WHERE id = $1 AND workspace_id = $2 AND "
               "revoked_at IS NULL",
               {token_id, workspace_id, NowMs()})
          .status());
  SLIPWAY_ASSIGN_OR_RETURN(auto row,
                           db_.QueryRow(fmt::format("SELECT {} FROM api_tokens WHERE id = $1 AND "
                                                    "workspace_id = $2",
                                                    kTokenColumns),
                                        {token_id, workspace_id}));
  if (!row) {
    return Status::NotFound(fmt::format(
        "no token {} in this workspace (`slipway token list` shows its tokens)", token_id));
  }
  return TokenFromRow(*row);
}

}  // namespace slipway::ctrl
