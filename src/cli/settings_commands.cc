// `slipway token create|list|revoke` and `slipway env set|list|unset`: the workspace's API
// tokens and a project's environment variables. Each is one call to the control plane.
#include <fmt/format.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/deployment_view.h"
#include "slipway/ctrl/v1/env.pb.h"
#include "slipway/ctrl/v1/token.pb.h"

namespace slipway::cli {
namespace {

namespace pb = slipway::ctrl::v1;
using Json = nlohmann::json;

// Prints the failure (also as {"error": ...} with --json) and returns 1, or returns 0.
int Done(const CommonOptions& common, Console& console, const Status& st) {
  if (st.ok()) return 0;
  console.Error(st.message());
  if (common.json) console.Result(Json{{"error", st.message()}}.dump());
  return 1;
}

std::string UtcTime(int64_t ms) {
  if (ms == 0) return "never";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

std::string ScopeName(pb::TokenScope scope) {
  return scope == pb::TOKEN_SCOPE_READ ? "read" : "deploy";
}

// What a token is now, as a word: active, expired or revoked.
std::string TokenState(const pb::Token& t) {
  if (t.revoked_at_ms() != 0) return "revoked";
  if (t.expires_at_ms() != 0 && t.expires_at_ms() <= NowMs()) return "expired";
  return "active";
}

Json TokenJson(const pb::Token& t) {
  return Json{{"id", t.id()},
              {"name", t.name()},
              {"scope", ScopeName(t.scope())},
              {"state", TokenState(t)},
              {"created_at_ms", t.created_at_ms()},
              {"expires_at_ms", t.expires_at_ms()},
              {"revoked_at_ms", t.revoked_at_ms()},
              {"last_used_at_ms", t.last_used_at_ms()}};
}

Result<std::string> ProjectOf(const EnvTarget& target) {
  ProjectFlags flags;
  flags.project = target.project;
  SLIPWAY_ASSIGN_OR_RETURN(ProjectSettings settings, LoadProjectSettings(target.dir, flags));
  return settings.project;
}

std::string ScopeWords(const std::string& environment) {
  return environment.empty() ? "every environment" : "environment " + environment;
}

}  // namespace

int RunTokenCreateCommand(const TokenCreateCommandOptions& o, Console& console) {
  pb::CreateTokenResponse resp;
  Status st = [&]() -> Status {
    pb::CreateTokenRequest req;
    if (o.scope == "read") {
      req.set_scope(pb::TOKEN_SCOPE_READ);
    } else if (o.scope == "deploy") {
      req.set_scope(pb::TOKEN_SCOPE_DEPLOY);
    } else {
      return Status::InvalidArgument(fmt::format(
          "--scope {} is not a token scope: use deploy (everything) or read (look, change "
          "nothing)",
          o.scope));
    }
    if (o.expires.count() < 0 || (o.expires.count() > 0 && o.expires.count() < 1000)) {
      return Status::InvalidArgument(
          "--expires must be at least 1s (like 30d or 12h), or 0 for never");
    }
    req.set_name(o.name);
    req.set_expires_in_seconds(o.expires.count() / 1000);
    SLIPWAY_ASSIGN_OR_RETURN(auto ctrl, OpenCtrl(o.common.connection));
    return ctrl->Call("TokenService", "CreateToken", req, &resp);
  }();
  if (int code = Done(o.common, console, st); code != 0) return code;
  const pb::Token& t = resp.token();
  console.Line(fmt::format("Created token {} (scope {}, expires {}); it is shown only this once:",
                           t.id(), ScopeName(t.scope()), UtcTime(t.expires_at_ms())));
  if (o.common.json) {
    Json j = TokenJson(t);
    j["token"] = resp.secret();
    console.Result(j.dump());
  } else {
    console.Line("  " + resp.secret());
  }
  return 0;
}

int RunTokenListCommand(const TokenListCommandOptions& o, Console& console) {
  pb::ListTokensResponse resp;
  Status st = [&]() -> Status {
    SLIPWAY_ASSIGN_OR_RETURN(auto ctrl, OpenCtrl(o.common.connection));
    return ctrl->Call("TokenService", "ListTokens", pb::ListTokensRequest(), &resp);
  }();
  if (int code = Done(o.common, console, st); code != 0) return code;
  if (o.common.json) {
    Json list = Json::array();
    for (const auto& t : resp.tokens()) list.push_back(TokenJson(t));
    console.Result(Json{{"tokens", list}}.dump());
    return 0;
  }
  console.Line(fmt::format("{:<24} {:<7} {:<8} {:<21} {:<21} {}", "ID", "SCOPE", "STATE", "CREATED",
                           "EXPIRES", "NAME"));
  for (const auto& t : resp.tokens()) {
    console.Line(fmt::format("{:<24} {:<7} {:<8} {:<21} {:<21} {}", t.id(), ScopeName(t.scope()),
                             TokenState(t), UtcTime(t.created_at_ms()), UtcTime(t.expires_at_ms()),
                             t.name()));
  }
  return 0;
}

int RunTokenRevokeCommand(const TokenRevokeCommandOptions& o, Console& console) {
  pb::RevokeTokenResponse resp;
  Status st = [&]() -> Status {
    if (o.token_id.empty()) {
      return Status::InvalidArgument(
          "which token? pass its id (`slipway token list` shows them): slipway token revoke "
          "tok_...");
    }
    SLIPWAY_ASSIGN_OR_RETURN(auto ctrl, OpenCtrl(o.common.connection));
    pb::RevokeTokenRequest req;
    req.set_token_id(o.token_id);
    return ctrl->Call("TokenService", "RevokeToken", req, &resp);
  }();
  if (int code = Done(o.common, console, st); code != 0) return code;
  console.Line(fmt::format("Revoked token {} (at {}); calls with it are refused from now on",
                           resp.token().id(), UtcTime(resp.token().revoked_at_ms())));
  if (o.common.json) console.Result(TokenJson(resp.token()).dump());
  return 0;
}

int RunEnvSetCommand(const EnvSetCommandOptions& o, Console& console) {
  pb::SetEnvResponse resp;
  Status st = [&]() -> Status {
    const size_t eq = o.assignment.find('=');
    if (eq == std::string::npos || eq == 0) {
      // Never echo the argument: it may be a secret's value.
      return Status::InvalidArgument(
          "give the variable as KEY=VALUE: slipway env set API_KEY=... --secret");
    }
    SLIPWAY_ASSIGN_OR_RETURN(std::string project, ProjectOf(o.target));
    SLIPWAY_ASSIGN_OR_RETURN(auto ctrl, OpenCtrl(o.common.connection));
    pb::SetEnvRequest req;
    req.set_project(project);
    req.set_environment(o.target.environment);
    req.set_name(o.assignment.substr(0, eq));
    req.set_value(o.assignment.substr(eq + 1));
    req.set_secret(o.secret);
    return ctrl->Call("EnvService", "SetEnv", req, &resp);
  }();
  if (int code = Done(o.common, console, st); code != 0) return code;
  const pb::EnvVar& v = resp.var();
  console.Line(fmt::format("Set {}{} for {}; deployments from now on get it", v.name(),
                           v.secret() ? " (secret)" : "", ScopeWords(v.environment())));
  if (o.common.json) {
    console.Result(
        Json{{"name", v.name()}, {"environment", v.environment()}, {"secret", v.secret()}}.dump());
  }
  return 0;
}

int RunEnvListCommand(const EnvListCommandOptions& o, Console& console) {
  pb::ListEnvResponse resp;
  Status st = [&]() -> Status {
    SLIPWAY_ASSIGN_OR_RETURN(std::string project, ProjectOf(o.target));
    SLIPWAY_ASSIGN_OR_RETURN(auto ctrl, OpenCtrl(o.common.connection));
    pb::ListEnvRequest req;
    req.set_project(project);
    return ctrl->Call("EnvService", "ListEnv", req, &resp);
  }();
  if (int code = Done(o.common, console, st); code != 0) return code;
  Json list = Json::array();
  if (!o.common.json) console.Line(fmt::format("{:<32} {:<14} {}", "NAME", "ENVIRONMENT", "VALUE"));
  for (const auto& v : resp.vars()) {
    if (!o.target.environment.empty() && !v.environment().empty() &&
        v.environment() != o.target.environment) {
      continue;
    }
    // The control plane never sends a secret's value; nothing to hide here but to say so.
    const std::string shown = v.secret() ? "(secret)" : v.value();
    const std::string scope = v.environment().empty() ? "*" : v.environment();
    if (o.common.json) {
      Json j{{"name", v.name()}, {"environment", v.environment()}, {"secret", v.secret()}};
      if (!v.secret()) j["value"] = v.value();
      list.push_back(j);
    } else {
      console.Line(fmt::format("{:<32} {:<14} {}", v.name(), scope, shown));
    }
  }
  if (o.common.json) console.Result(Json{{"vars", list}}.dump());
  return 0;
}

int RunEnvUnsetCommand(const EnvUnsetCommandOptions& o, Console& console) {
  Status st = [&]() -> Status {
    if (o.name.empty()) return Status::InvalidArgument("which variable? slipway env unset KEY");
    SLIPWAY_ASSIGN_OR_RETURN(std::string project, ProjectOf(o.target));
    SLIPWAY_ASSIGN_OR_RETURN(auto ctrl, OpenCtrl(o.common.connection));
    pb::UnsetEnvRequest req;
    req.set_project(project);
    req.set_environment(o.target.environment);
    req.set_name(o.name);
    pb::UnsetEnvResponse resp;
    return ctrl->Call("EnvService", "UnsetEnv", req, &resp);
  }();
  if (int code = Done(o.common, console, st); code != 0) return code;
  console.Line(fmt::format("Unset {} for {}; deployments from now on do not get it", o.name,
                           ScopeWords(o.target.environment)));
  if (o.common.json)
    console.Result(Json{{"name", o.name}, {"environment", o.target.environment}}.dump());
  return 0;
}

}  // namespace slipway::cli
