#include "ctrl/build/buildkit/registry_credentials.h"

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/crypto.h"

namespace slipway::ctrl::build::buildkit {

std::string NormalizeRegistryHost(const std::string& key) {
  std::string host = key;
  if (size_t scheme = host.find("://"); scheme != std::string::npos) host = host.substr(scheme + 3);
  if (size_t slash = host.find('/'); slash != std::string::npos) host = host.substr(0, slash);
  if (host == "index.docker.io" || host == "registry-1.docker.io") host = "docker.io";
  return host;
}

std::string RegistryHostOf(const std::string& image) {
  size_t slash = image.find('/');
  if (slash == std::string::npos) return "docker.io";
  std::string first = image.substr(0, slash);
  // Only a first component with a dot, a colon, or "localhost" names a registry.
  if (first.find('.') == std::string::npos && first.find(':') == std::string::npos &&
      first != "localhost") {
    return "docker.io";
  }
  return first;
}

void RegistryCredentials::Set(const std::string& host, RegistryCredential credential) {
  by_host_[NormalizeRegistryHost(host)] = std::move(credential);
}

std::optional<RegistryCredential> RegistryCredentials::For(const std::string& host) const {
  auto it = by_host_.find(NormalizeRegistryHost(host));
  if (it == by_host_.end()) return std::nullopt;
  return it->second;
}

Result<RegistryCredentials> RegistryCredentials::Load(const std::string& registry,
                                                      const std::string& username,
                                                      const std::string& password,
                                                      const std::string& docker_config_dir) {
  RegistryCredentials creds;
  std::string dir = docker_config_dir;
  if (dir.empty()) {
    const char* home = std::getenv("HOME");
    if (home != nullptr) dir = std::string(home) + "/.docker";
  }
  if (!dir.empty()) {
    const std::string path = dir + "/config.json";
    std::ifstream in(path);
    if (in) {
      std::ostringstream text;
      text << in.rdbuf();
      auto config = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
      if (config.is_discarded() || !config.is_object()) {
        return Status::InvalidArgument(
            fmt::format("the docker config {} is not valid JSON (fix it, or point DOCKER_CONFIG "
                        "at another directory)",
                        path));
      }
      if (config.contains("auths") && config["auths"].is_object()) {
        for (const auto& [key, entry] : config["auths"].items()) {
          if (!entry.is_object()) continue;
          RegistryCredential c;
          if (entry.contains("auth") && entry["auth"].is_string()) {
            std::string decoded;
            if (Base64Decode(entry["auth"].get<std::string>(), &decoded)) {
              size_t colon = decoded.find(':');
              if (colon != std::string::npos) {
                c.username = decoded.substr(0, colon);
                c.secret = decoded.substr(colon + 1);
              }
            }
          }
          if (c.username.empty()) c.username = entry.value("username", "");
          if (c.secret.empty()) c.secret = entry.value("password", "");
          if (c.secret.empty()) c.secret = entry.value("identitytoken", "");
          if (!c.secret.empty()) creds.Set(key, std::move(c));
        }
      }
    }
  }
  // Explicit settings win over the config file.
  if (!username.empty() || !password.empty()) {
    if (registry.empty()) {
      return Status::InvalidArgument(
          "REGISTRY_USERNAME/REGISTRY_PASSWORD are set but REGISTRY is not: name the registry "
          "they are for");
    }
    if (username.empty() || password.empty()) {
      return Status::InvalidArgument("set both REGISTRY_USERNAME and REGISTRY_PASSWORD, or neither");
    }
    creds.Set(registry, {username, password});
  }
  return creds;
}

}  // namespace slipway::ctrl::build::buildkit
