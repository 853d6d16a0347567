#include "ctrl/app_env.h"

#include <fmt/format.h>

#include "base/crypto.h"

namespace slipway::ctrl {
namespace {

constexpr std::string_view kSealedPrefix = "aesgcm1:";

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// What the ciphertext is bound to: moving it to another project, environment or name breaks it.
std::string Binding(const std::string& project_id, const std::string& environment,
                    const std::string& name) {
  return project_id + "\n" + environment + "\n" + name;
}

}  // namespace

Result<SecretBox> SecretBox::FromKeyText(const std::string& key_text) {
  SecretBox box;
  if (key_text.empty()) return box;
  bool hex = key_text.size() == 64;
  std::string key;
  for (size_t i = 0; hex && i < key_text.size(); i += 2) {
    int hi = HexDigit(key_text[i]), lo = HexDigit(key_text[i + 1]);
    if (hi < 0 || lo < 0) hex = false;
    key.push_back(static_cast<char>(hi * 16 + lo));
  }
  if (!hex) {
    return Status::InvalidArgument(fmt::format(
        "SLIPWAY_SECRET_KEY must be 64 hex digits (32 bytes), not {} characters: make one with "
        "`openssl rand -hex 32` and keep it, since the secrets stored with it open only with it",
        key_text.size()));
  }
  box.key_ = std::move(key);
  return box;
}

Status SecretBox::NeedKey(const std::string& what) const {
  if (has_key()) return Status::Ok();
  return Status::FailedPrecondition(fmt::format(
      "this control plane has no SLIPWAY_SECRET_KEY, so it cannot {}: start ctrl with "
      "SLIPWAY_SECRET_KEY (or --secret-key) set to 64 hex digits, e.g. from `openssl rand -hex "
      "32` (`slipway dev` makes one and keeps it in its data directory)",
      what));
}

Result<std::string> SecretBox::Seal(const std::string& project_id, const std::string& environment,
                                    const std::string& name, const std::string& plaintext) const {
  SLIPWAY_RETURN_IF_ERROR(NeedKey("store secrets"));
  SLIPWAY_ASSIGN_OR_RETURN(std::string sealed,
                           AesGcmSeal(key_, plaintext, Binding(project_id, environment, name)));
  return std::string(kSealedPrefix) + Base64Encode(sealed);
}

Result<std::string> SecretBox::Open(const std::string& project_id, const std::string& environment,
                                    const std::string& name, const std::string& sealed) const {
  SLIPWAY_RETURN_IF_ERROR(NeedKey(fmt::format("open the secret {}", name)));
  std::string bytes;
  if (sealed.rfind(kSealedPrefix, 0) != 0 ||
      !Base64Decode(std::string_view(sealed).substr(kSealedPrefix.size()), &bytes)) {
    return Status::FailedPrecondition(fmt::format(
        "the stored secret {} is not in the sealed form this slipway writes; set it again with "
        "`slipway env set {}=... --secret`",
        name, name));
  }
  auto opened = AesGcmOpen(key_, bytes, Binding(project_id, environment, name));
  if (!opened.ok()) {
    return Status::FailedPrecondition(fmt::format(
        "the secret {} does not open with this control plane's SLIPWAY_SECRET_KEY: it was stored "
        "under another key; start ctrl with the key it was stored with, or set it again with "
        "`slipway env set {}=... --secret`",
        name, name));
  }
  return opened;
}

Result<std::map<std::string, std::string>> ResolveAppEnv(Store& store, const SecretBox& secrets,
                                                         const DeploymentRecord& deployment) {
  SLIPWAY_ASSIGN_OR_RETURN(auto vars, store.ListEnvVars(deployment.project_id));
  std::map<std::string, std::string> env;
  // Every environment's first, then this environment's over them.
  for (const std::string& scope : {std::string(), deployment.environment}) {
    for (const EnvVarRecord& v : vars) {
      if (v.environment != scope) continue;
      if (!v.secret) {
        env[v.name] = v.value;
        continue;
      }
      SLIPWAY_ASSIGN_OR_RETURN(env[v.name],
                               secrets.Open(deployment.project_id, v.environment, v.name, v.value));
    }
  }
  for (const auto& [k, v] : deployment.env) env[k] = v;
  return env;
}

Status ValidateEnvVarName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 256 && !(name[0] >= '0' && name[0] <= '9');
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
      ok = false;
    }
  }
  if (ok) return Status::Ok();
  return Status::InvalidArgument(fmt::format(
      "\"{}\" is not an environment variable name: use letters, digits and '_', not starting "
      "with a digit (like DATABASE_URL)",
      name));
}

}  // namespace slipway::ctrl
