// What an app's instances get as environment variables, and how its secrets are kept.
//
// A project's variables are set with EnvService (`slipway env set`), for every environment
// ("") or for one; a secret's value is sealed with AES-256-GCM under the control plane's key
// (SLIPWAY_SECRET_KEY, 32 bytes as 64 hex digits) and bound to its project, environment and name,
// so a ciphertext copied to another row does not open. Secrets are opened only when a
// deployment's instances are created (DeploymentOps::Schedule), and the plaintext goes nowhere
// but krane's CreateDeployment request: not into the workflow journal, logs or API answers.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "base/status.h"
#include "ctrl/store.h"

namespace slipway::ctrl {

class SecretBox {
 public:
  // From SLIPWAY_SECRET_KEY's text; empty text: a box without a key, which refuses to seal or
  // open with a message saying how to set one. InvalidArgument for a malformed key.
  static Result<SecretBox> FromKeyText(const std::string& key_text);

  bool has_key() const { return !key_.empty(); }
  // "aesgcm1:<base64 of nonce | ciphertext | tag>".
  Result<std::string> Seal(const std::string& project_id, const std::string& environment,
                           const std::string& name, const std::string& plaintext) const;
  Result<std::string> Open(const std::string& project_id, const std::string& environment,
                           const std::string& name, const std::string& sealed) const;

 private:
  Status NeedKey(const std::string& what) const;
  std::string key_;  // 32 bytes, or empty
};

// The environment of a deployment's instances: the project's variables for every environment,
// then those of the deployment's environment over them, then the deployment's own (`deploy
// --env`) over both; secrets opened. FailedPrecondition, naming the variable, when a secret
// cannot be opened (no key, or not the key it was sealed with).
Result<std::map<std::string, std::string>> ResolveAppEnv(Store& store, const SecretBox& secrets,
                                                         const DeploymentRecord& deployment);

// Environment variable names as POSIX shells take them: [A-Za-z_][A-Za-z0-9_]*, at most 256.
Status ValidateEnvVarName(const std::string& name);

}  // namespace slipway::ctrl
