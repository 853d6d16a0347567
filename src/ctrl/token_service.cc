#include "ctrl/token_service.h"

#include <fmt/format.h>

#include "slipway/ctrl/v1/token.pb.h"

namespace slipway::ctrl {
namespace {

namespace pb = slipway::ctrl::v1;

constexpr std::string_view kTokenService = "slipway.ctrl.v1.TokenService";
// Long enough for any real use, short enough that the millisecond sum cannot overflow.
constexpr int64_t kMaxExpirySeconds = 100ll * 366 * 24 * 3600;

void TokenToProto(const TokenRecord& t, pb::Token* out) {
  out->set_id(t.id);
  out->set_name(t.name);
  out->set_scope(t.scope == "read" ? pb::TOKEN_SCOPE_READ : pb::TOKEN_SCOPE_DEPLOY);
  out->set_created_at_ms(t.created_at_ms);
  out->set_expires_at_ms(t.expires_at_ms);
  out->set_revoked_at_ms(t.revoked_at_ms);
  out->set_last_used_at_ms(t.last_used_at_ms);
}

}  // namespace

void RegisterTokenService(net::ConnectRouter& router, const ServiceDeps& deps) {
  const ServiceDeps* d = &deps;
  router.Unary<pb::CreateTokenRequest, pb::CreateTokenResponse>(
      net::ConnectProcedure(kTokenService, "CreateToken"),
      [d](net::CallContext& ctx, const pb::CreateTokenRequest& req,
          pb::CreateTokenResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws,
                                 Authenticate(*d, ctx, Access::kChange, "CreateToken"));
        if (req.expires_in_seconds() < 0 || req.expires_in_seconds() > kMaxExpirySeconds) {
          return Status::InvalidArgument(
              "expires_in_seconds must be 0 (never) or a positive number of seconds up to 100 "
              "years");
        }
        if (req.name().size() > 200) {
          return Status::InvalidArgument("a token's name is at most 200 characters");
        }
        std::string scope;
        switch (req.scope()) {
          case pb::TOKEN_SCOPE_UNSPECIFIED:
          case pb::TOKEN_SCOPE_DEPLOY:
            scope = "deploy";
            break;
          case pb::TOKEN_SCOPE_READ:
            scope = "read";
            break;
          default:
            return Status::InvalidArgument(
                fmt::format("token scope {} is not one of deploy and read", int(req.scope())));
        }
        const int64_t expires_at =
            req.expires_in_seconds() == 0 ? 0 : d->store->NowMs() + req.expires_in_seconds() * 1000;
        SLIPWAY_ASSIGN_OR_RETURN(auto issued,
                                 d->store->CreateToken(ws, req.name(), scope, expires_at));
        TokenToProto(issued.first, resp->mutable_token());
        resp->set_secret(issued.second);
        return Status::Ok();
      });

  router.Unary<pb::ListTokensRequest, pb::ListTokensResponse>(
      net::ConnectProcedure(kTokenService, "ListTokens"),
      [d](net::CallContext& ctx, const pb::ListTokensRequest&,
          pb::ListTokensResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws,
                                 Authenticate(*d, ctx, Access::kRead, "ListTokens"));
        SLIPWAY_ASSIGN_OR_RETURN(auto tokens, d->store->ListTokens(ws));
        for (const auto& t : tokens) TokenToProto(t, resp->add_tokens());
        return Status::Ok();
      });

  router.Unary<pb::RevokeTokenRequest, pb::RevokeTokenResponse>(
      net::ConnectProcedure(kTokenService, "RevokeToken"),
      [d](net::CallContext& ctx, const pb::RevokeTokenRequest& req,
          pb::RevokeTokenResponse* resp) -> Status {
        SLIPWAY_ASSIGN_OR_RETURN(std::string ws,
                                 Authenticate(*d, ctx, Access::kChange, "RevokeToken"));
        SLIPWAY_ASSIGN_OR_RETURN(TokenRecord t, d->store->RevokeToken(ws, req.token_id()));
        TokenToProto(t, resp->mutable_token());
        return Status::Ok();
      });
}

}  // namespace slipway::ctrl
