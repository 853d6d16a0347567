// The user-facing commands: `slipway build`, `slipway deploy`, `slipway status`, `slipway
// list`, the lifecycle commands, `slipway token ...` and `slipway env ...`. Each takes its parsed options and a Console, talks to ctrl only through its Connect
// API, and returns the process exit code: 0 when the command did what was asked (the build
// succeeded, the deployment is READY, the status was shown), 1 otherwise, after an error a
// person can act on; 130 when the user interrupted (Ctrl-C) a build or deploy, after saying
// that it goes on in the control plane. With --json exactly one JSON object goes to stdout, also on
// failure (status "ERROR" when the command failed before a build or deployment existed).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "cli/console.h"
#include "cli/credentials.h"
#include "cli/project_config.h"

namespace slipway::cli {

inline constexpr int kInterruptedExit = 130;

struct CommonOptions {
  ConnectionFlags connection;
  bool json = false;
  // How often build and deployment state is polled when the control plane's progress stream
  // is not available (follow.h).
  std::chrono::milliseconds poll_interval{2000};
};

struct BuildCommandOptions {
  std::filesystem::path dir = ".";
  ProjectFlags project;
  CommonOptions common;
};

struct DeployCommandOptions {
  std::filesystem::path dir = ".";
  ProjectFlags project;
  std::string image;  // deploy this image instead of building the directory
  bool fail_on_breaking = false;  // or [deploy] fail_on_breaking in slipway.toml
  CommonOptions common;
};

struct StatusCommandOptions {
  std::string deployment_id;
  // Follow the deployment (steps, build log) until READY, FAILED or DELETED, then show it.
  bool follow = false;
  CommonOptions common;
};

struct ListCommandOptions {
  std::string project;  // empty: every project of the workspace
  int limit = 20;
  CommonOptions common;
};

// `slipway redeploy ID [--no-cache]`: a new deployment from ID's retained source, followed like
// a deploy.
struct RedeployCommandOptions {
  std::string deployment_id;
  bool no_cache = false;
  CommonOptions common;
};

// `slipway rollback [--to ID]`: the environment's hosts go back to an earlier READY deployment.
struct RollbackCommandOptions {
  std::filesystem::path dir = ".";  // names the project through slipway.toml or its name
  std::optional<std::string> project;
  std::string environment;  // default: slipway.toml's, else production
  std::string to;           // default: the deployment before the live one
  CommonOptions common;
};

// `slipway promote ID [--environment production]`.
struct PromoteCommandOptions {
  std::string deployment_id;
  std::string environment = "production";
  CommonOptions common;
};

// `slipway delete ID [--force]`.
struct DeleteCommandOptions {
  std::string deployment_id;
  bool force = false;
  CommonOptions common;
};

// `slipway logs ID`: the instances' runtime output; with follow, until interrupted.
struct LogsCommandOptions {
  std::string deployment_id;
  bool follow = false;
  int instance = -1;              // -1: every instance
  std::chrono::milliseconds since{0};  // only lines this recent; 0: the last `tail`
  int tail = 100;
  CommonOptions common;
};

// `slipway token create [--scope deploy|read] [--expires 30d] [--name N]`.
struct TokenCreateCommandOptions {
  std::string name;
  std::string scope = "deploy";
  std::chrono::milliseconds expires{0};  // 0: never
  CommonOptions common;
};

// `slipway token list`.
struct TokenListCommandOptions {
  CommonOptions common;
};

// `slipway token revoke ID`.
struct TokenRevokeCommandOptions {
  std::string token_id;
  CommonOptions common;
};

// What the `slipway env` commands share: the project (as rollback finds it) and the environment
// ("" for every environment).
struct EnvTarget {
  std::filesystem::path dir = ".";
  std::optional<std::string> project;
  std::string environment;
};

// `slipway env set KEY=VALUE [--secret] [--environment E]`.
struct EnvSetCommandOptions {
  EnvTarget target;
  std::string assignment;  // KEY=VALUE
  bool secret = false;
  CommonOptions common;
};

// `slipway env list`: names, scopes and plain values; a secret's value is never shown.
struct EnvListCommandOptions {
  EnvTarget target;
  CommonOptions common;
};

// `slipway env unset KEY [--environment E]`.
struct EnvUnsetCommandOptions {
  EnvTarget target;
  std::string name;
  CommonOptions common;
};

int RunBuildCommand(const BuildCommandOptions& options, Console& console);
int RunDeployCommand(const DeployCommandOptions& options, Console& console);
int RunStatusCommand(const StatusCommandOptions& options, Console& console);
int RunListCommand(const ListCommandOptions& options, Console& console);
int RunRedeployCommand(const RedeployCommandOptions& options, Console& console);
int RunRollbackCommand(const RollbackCommandOptions& options, Console& console);
int RunPromoteCommand(const PromoteCommandOptions& options, Console& console);
int RunDeleteCommand(const DeleteCommandOptions& options, Console& console);
int RunLogsCommand(const LogsCommandOptions& options, Console& console);
int RunTokenCreateCommand(const TokenCreateCommandOptions& options, Console& console);
int RunTokenListCommand(const TokenListCommandOptions& options, Console& console);
int RunTokenRevokeCommand(const TokenRevokeCommandOptions& options, Console& console);
int RunEnvSetCommand(const EnvSetCommandOptions& options, Console& console);
int RunEnvListCommand(const EnvListCommandOptions& options, Console& console);
int RunEnvUnsetCommand(const EnvUnsetCommandOptions& options, Console& console);

}  // namespace slipway::cli
