// Registry credentials a build may need to push (and to pull private base images): a username
// and secret per registry host, from REGISTRY_USERNAME / REGISTRY_PASSWORD (for REGISTRY) and
// from a docker config.json (`docker login` writes it: "auths" → host → "auth" as base64 of
// user:password, or "username"/"password", or an "identitytoken"). Credential helpers
// ("credsStore", "credHelpers") are not run: give such registries' credentials explicitly.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "base/status.h"

namespace slipway::ctrl::build::buildkit {

struct RegistryCredential {
  std::string username;
  std::string secret;  // password or identity token
};

class RegistryCredentials {
 public:
  // docker_config_dir: the directory holding config.json (DOCKER_CONFIG); empty: ~/.docker.
  // A config.json that does not exist is no credentials; one that is not valid JSON is
  // InvalidArgument naming the file.
  static Result<RegistryCredentials> Load(const std::string& registry, const std::string& username,
                                          const std::string& password,
                                          const std::string& docker_config_dir);

  bool empty() const { return by_host_.empty(); }
  // The credential for a registry host ("127.0.0.1:5000", "ghcr.io"); nullopt: anonymous.
  std::optional<RegistryCredential> For(const std::string& host) const;
  void Set(const std::string& host, RegistryCredential credential);

 private:
  std::map<std::string, RegistryCredential> by_host_;
};

// "https://index.docker.io/v1/" → "docker.io"; "http://127.0.0.1:5000/" → "127.0.0.1:5000".
std::string NormalizeRegistryHost(const std::string& key);
// The registry host of an image reference: "127.0.0.1:5000/app:1" → "127.0.0.1:5000";
// "app:1" → "docker.io".
std::string RegistryHostOf(const std::string& image);

}  // namespace slipway::ctrl::build::buildkit
