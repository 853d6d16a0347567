// Where the CLI finds its control plane and API token.
//
// Promised order, for each of the two settings on its own: the flag (--control-plane,
// --token), else the environment (SLIPWAY_CONTROL_PLANE, SLIPWAY_TOKEN; empty counts as unset),
// else the credentials file `slipway dev` writes
// (${XDG_CONFIG_HOME:-$HOME/.config}/slipway/dev.json, {"control_plane": ..., "token": ...}).
// The file is read only when a setting is still missing, so a broken file never stands in the
// way of explicit settings. Every failure is an InvalidArgument/FailedPrecondition that says
// what to do next (start `slipway dev`, or pass the flags).
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace slipway::cli {

// Reads an environment variable; nullopt when unset. Injected so tests control it.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
// The process environment (getenv).
EnvLookup ProcessEnvironment();

// The flags as given; empty means not given.
struct ConnectionFlags {
  std::string control_plane;
  std::string token;
};

struct Connection {
  std::string control_plane;  // "http://127.0.0.1:7000": scheme added, no trailing '/'
  std::string token;
  // Where each came from, for messages: "--token", "SLIPWAY_TOKEN", or the file's path.
  std::string control_plane_source;
  std::string token_source;
};

// ${XDG_CONFIG_HOME:-$HOME/.config}/slipway/dev.json; empty when neither variable is set.
std::filesystem::path DevCredentialsPath(const EnvLookup& env);

// Resolves both settings in the promised order, reading `credentials_file` only when needed
// (an empty path means there is no file).
Result<Connection> ResolveConnection(const ConnectionFlags& flags, const EnvLookup& env,
                                     const std::filesystem::path& credentials_file);

// "127.0.0.1:7000" -> "http://127.0.0.1:7000"; trailing '/' dropped. InvalidArgument for a
// scheme other than http/https; `source` names the setting in the error.
Result<std::string> NormalizeControlPlaneUrl(std::string_view url, std::string_view source);

}  // namespace slipway::cli
