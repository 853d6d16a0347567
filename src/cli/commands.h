// The user-facing commands: `slipway build`, `slipway deploy`, `slipway status`, `slipway
// list`. Each takes its parsed options and a Console, talks to ctrl only through its Connect
// API, and returns the process exit code: 0 when the command did what was asked (the build
// succeeded, the deployment is READY, the status was shown), 1 otherwise, after an error a
// person can act on; 130 when the user interrupted (Ctrl-C) a build or deploy, after saying
// that it goes on in the control plane. With --json exactly one JSON object goes to stdout, also on
// failure (status "ERROR" when the command failed before a build or deployment existed).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "cli/console.h"
#include "cli/credentials.h"
#include "cli/project_config.h"

namespace slipway::cli {

inline constexpr int kInterruptedExit = 130;

struct CommonOptions {
  ConnectionFlags connection;
  bool json = false;
  // How often build and deployment state is polled.
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
  CommonOptions common;
};

struct StatusCommandOptions {
  std::string deployment_id;
  CommonOptions common;
};

struct ListCommandOptions {
  std::string project;  // empty: every project of the workspace
  int limit = 20;
  CommonOptions common;
};

int RunBuildCommand(const BuildCommandOptions& options, Console& console);
int RunDeployCommand(const DeployCommandOptions& options, Console& console);
int RunStatusCommand(const StatusCommandOptions& options, Console& console);
int RunListCommand(const ListCommandOptions& options, Console& console);

}  // namespace slipway::cli
