#include "cli/credentials.h"

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

namespace slipway::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kControlPlaneEnv = "SLIPWAY_CONTROL_PLANE";
constexpr std::string_view kTokenEnv = "SLIPWAY_TOKEN";

std::optional<std::string> NonEmpty(const EnvLookup& env, std::string_view name) {
  auto v = env(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

struct FileCredentials {
  std::string control_plane;
  std::string token;
};

// nullopt when there is no file; an error when it exists but cannot be used.
Result<std::optional<FileCredentials>> ReadCredentialsFile(const fs::path& file) {
  std::error_code ec;
  if (file.empty() || !fs::exists(file, ec)) return std::optional<FileCredentials>();
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Status::FailedPrecondition(fmt::format(
        "cannot read the credentials file {} (check its permissions, or pass --control-plane "
        "and --token)",
        file.string()));
  }
  nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  auto field = [&](const char* name) -> std::string {
    if (!doc.is_object() || !doc.contains(name) || !doc[name].is_string()) return "";
    return doc[name].get<std::string>();
  };
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::FailedPrecondition(fmt::format(
        "the credentials file {} is not a JSON object like {{\"control_plane\": \"...\", "
        "\"token\": \"...\"}}: restart `slipway dev` to rewrite it, or pass --control-plane and "
        "--token",
        file.string()));
  }
  return std::optional<FileCredentials>(FileCredentials{field("control_plane"), field("token")});
}

}  // namespace

EnvLookup ProcessEnvironment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

fs::path DevCredentialsPath(const EnvLookup& env) {
  if (auto xdg = NonEmpty(env, "XDG_CONFIG_HOME")) return fs::path(*xdg) / "slipway" / "dev.json";
  if (auto home = NonEmpty(env, "HOME"))
    return fs::path(*home) / ".config" / "slipway" / "dev.json";
  return {};
}

Result<std::string> NormalizeControlPlaneUrl(std::string_view url, std::string_view source) {
  std::string out(url);
  while (!out.empty() && out.back() == '/') out.pop_back();
  size_t scheme = out.find("://");
  if (scheme == std::string::npos) {
    out = "http://" + out;
  } else if (out.compare(0, scheme, "http") != 0 && out.compare(0, scheme, "https") != 0) {
    return Status::InvalidArgument(fmt::format(
        "the control plane address \"{}\" (from {}) must be an http:// or https:// URL, like "
        "http://127.0.0.1:7000",
        url, source));
  }
  if (out.size() <= out.find("://") + 3) {
    return Status::InvalidArgument(
        fmt::format("the control plane address \"{}\" (from {}) has no host: use one like "
                    "http://127.0.0.1:7000",
                    url, source));
  }
  return out;
}

Result<Connection> ResolveConnection(const ConnectionFlags& flags, const EnvLookup& env,
                                     const fs::path& credentials_file) {
  Connection c;
  auto take = [](std::string* value, std::string* source, const std::string& flag_value,
                 std::string_view flag, const std::optional<std::string>& env_value,
                 std::string_view env_name) {
    if (!flag_value.empty()) {
      *value = flag_value;
      *source = flag;
    } else if (env_value) {
      *value = *env_value;
      *source = env_name;
    }
  };
  take(&c.control_plane, &c.control_plane_source, flags.control_plane, "--control-plane",
       NonEmpty(env, kControlPlaneEnv), kControlPlaneEnv);
  take(&c.token, &c.token_source, flags.token, "--token", NonEmpty(env, kTokenEnv), kTokenEnv);

  if (c.control_plane.empty() || c.token.empty()) {
    SLIPWAY_ASSIGN_OR_RETURN(auto file, ReadCredentialsFile(credentials_file));
    if (file) {
      if (c.control_plane.empty() && !file->control_plane.empty()) {
        c.control_plane = file->control_plane;
        c.control_plane_source = credentials_file.string();
      }
      if (c.token.empty() && !file->token.empty()) {
        c.token = file->token;
        c.token_source = credentials_file.string();
      }
    }
  }

  std::string file_hint =
      credentials_file.empty()
          ? std::string("`slipway dev` writes both to ~/.config/slipway/dev.json")
          : fmt::format("`slipway dev` writes both to {}", credentials_file.string());
  if (c.control_plane.empty() && c.token.empty()) {
    return Status::FailedPrecondition(
        fmt::format("no control plane configured: start one with `slipway dev` ({}), or pass "
                    "--control-plane and --token (or set SLIPWAY_CONTROL_PLANE and SLIPWAY_TOKEN)",
                    file_hint));
  }
  if (c.control_plane.empty()) {
    return Status::FailedPrecondition(
        fmt::format("no control plane address: pass --control-plane http://HOST:PORT or set "
                    "SLIPWAY_CONTROL_PLANE ({})",
                    file_hint));
  }
  if (c.token.empty()) {
    return Status::FailedPrecondition(fmt::format(
        "no API token for the control plane at {}: pass --token or set SLIPWAY_TOKEN ({})",
        c.control_plane, file_hint));
  }
  SLIPWAY_ASSIGN_OR_RETURN(c.control_plane,
                           NormalizeControlPlaneUrl(c.control_plane, c.control_plane_source));
  return c;
}

}  // namespace slipway::cli
