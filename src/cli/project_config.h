// slipway.toml, and how command-line flags override it: what a project directory says about
// how it is built and deployed.
//
// The file (every key optional):
//
//   project = "api"                  # default: the directory's name, sanitized to [a-z0-9-]
//
//   [build]
//   context = "."                    # directory sent to the builder, relative to the project
//   dockerfile = "Dockerfile"        # relative to the context
//   args = { VERSION = "1.2" }       # build args (or a [build.args] table)
//   platforms = ["linux/amd64", "linux/arm64"]  # one multi-platform image (buildkit backend)
//   target = "release"               # the Dockerfile stage to build (default: the last)
//   no_cache = true                  # build every step again, every time
//
//   [deploy]
//   environment = "production"
//   branch = "main"                  # default: the git branch checked out in the directory
//   replicas = 2
//   cpu = 500                        # millicores
//   memory = 256                     # MiB
//   port = 8080                      # what the app listens on (it gets PORT)
//   health_check_path = "/healthz"   # default: a TCP connect marks an instance ready
//
//   [deploy.env]
//   LOG_LEVEL = "debug"
//
// Promised: a file that is not TOML, a value of the wrong type or out of range, and an unknown
// key (a misspelt `replica = 2` is never silently ignored) are InvalidArgument errors whose
// message starts with "<file>:<line>:<column>:" and says what is wrong. Flags win over the
// file, the file over defaults; map-valued settings (build args, env) merge key by key.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace slipway::cli {

// The name of the file LoadProjectConfig reads.
inline constexpr std::string_view kProjectConfigFile = "slipway.toml";

// What slipway.toml says; an unset optional means the file does not say.
struct ProjectConfig {
  std::optional<std::string> project;
  std::optional<std::string> context;
  std::optional<std::string> dockerfile;
  std::map<std::string, std::string> build_args;
  std::optional<std::string> platforms;  // "linux/amd64,linux/arm64"
  std::optional<std::string> target;
  std::optional<bool> no_cache;
  std::optional<std::string> environment;
  std::optional<std::string> branch;
  std::optional<int> replicas;
  std::optional<int> cpu_millicores;
  std::optional<int> memory_mib;
  std::optional<int> port;
  std::optional<std::string> health_check_path;
  std::map<std::string, std::string> env;
  std::optional<bool> fail_on_breaking;  // [deploy] fail_on_breaking
};

// Parses the text of a slipway.toml; `file_name` is how errors name the file.
Result<ProjectConfig> ParseProjectConfig(std::string_view text, const std::string& file_name);
// Reads `<dir>/slipway.toml`; no such file is an empty config.
Result<ProjectConfig> LoadProjectConfig(const std::filesystem::path& dir);

// What the command line says; unset means the flag was not given. build_args and env hold the
// "KEY=VALUE" texts of repeated --build-arg / --env flags.
struct ProjectFlags {
  std::optional<std::string> project;
  std::optional<std::string> context;
  std::optional<std::string> dockerfile;
  std::vector<std::string> build_args;
  std::optional<std::string> platform;  // --platform linux/amd64,linux/arm64
  std::optional<std::string> target;
  bool no_cache = false;  // --no-cache
  std::optional<std::string> environment;
  std::optional<std::string> branch;
  std::optional<int> replicas;
  std::optional<int> cpu_millicores;
  std::optional<int> memory_mib;
  std::optional<int> port;
  std::optional<std::string> health_check_path;
  std::vector<std::string> env;
};

// The merged settings of one build or deployment. Zero and empty values mean "the control
// plane's default" (1 replica, 500 millicores, 256 MiB, production).
struct ProjectSettings {
  std::filesystem::path dir;              // the project directory, absolute
  std::string project;                    // a valid project name
  std::filesystem::path context_dir;      // absolute
  std::string dockerfile = "Dockerfile";  // relative to context_dir
  std::map<std::string, std::string> build_args;
  std::string platform;  // comma list; empty: the control plane's BUILD_PLATFORM
  std::string target;
  bool no_cache = false;
  std::string environment;
  std::string branch;
  int replicas = 0;
  int cpu_millicores = 0;
  int memory_mib = 0;
  int port = 0;
  std::string health_check_path;
  std::map<std::string, std::string> env;
  // Keep the environment's hosts on the live deployment when this one breaks its OpenAPI spec.
  bool fail_on_breaking = false;
};

// Merges flags over the config over defaults for the project in `dir` (which must exist).
// Fails with InvalidArgument on a bad flag value (naming the flag), an invalid project name
// (naming where it came from), or a context that is not a directory.
Result<ProjectSettings> ResolveProjectSettings(const std::filesystem::path& dir,
                                               const ProjectConfig& config,
                                               const ProjectFlags& flags);

// The project name a directory called `dir_name` gets when nothing names one: lower-cased,
// every run of characters outside [a-z0-9] becomes one '-', no '-' at either end, at most 40
// characters ("My_App v2" -> "my-app-v2"). InvalidArgument when nothing is left ("___").
Result<std::string> ProjectNameFromDirectory(std::string_view dir_name);

// Checks a name someone chose (flag or file): 1-40 characters of a-z, 0-9 and '-', not starting
// or ending with '-'. `origin` says where it came from in the error ("--project").
Status ValidateProjectName(std::string_view name, std::string_view origin);

// Checks one platform ("linux/amd64", "linux/arm/v7"); `origin` names the flag or key.
Status ValidatePlatform(std::string_view platform, std::string_view origin);

// Splits "KEY=VALUE" (the value may contain '=' and be empty); `flag` names the flag in errors.
Result<std::pair<std::string, std::string>> ParseKeyValue(std::string_view text,
                                                          std::string_view flag);

}  // namespace slipway::cli
