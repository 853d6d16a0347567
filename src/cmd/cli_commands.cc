// `slipway build|deploy|status|list`: the user-facing CLI's flags. The commands themselves live
// in src/cli (commands.h); this file only maps flags onto their options.
#include <CLI/CLI.hpp>

#include <memory>
#include <optional>

#include "base/duration.h"
#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cmd/commands.h"

namespace slipway::cmd {
namespace {

template <typename T>
void AddOptionalFlag(CLI::App& cmd, const std::string& name, std::optional<T>& target,
                     const std::string& description) {
  cmd.add_option_function<T>(
      name, [&target](const T& v) { target = v; }, description);
}

// The poll interval's default must be set in `o` before this is called (it shows in --help).
void AddCommonFlags(CLI::App& cmd, cli::CommonOptions& o, bool polls) {
  // No CLI11 envname here: credentials.h resolves flag > environment > dev file itself, and
  // names where each setting came from in its errors.
  cmd.add_option("--control-plane", o.connection.control_plane,
                 "control plane URL (env SLIPWAY_CONTROL_PLANE; default from `slipway dev`)");
  cmd.add_option("--token", o.connection.token,
                 "API token (env SLIPWAY_TOKEN; default from `slipway dev`)");
  cmd.add_flag("--json", o.json,
               "print one JSON object with the result on stdout; human output goes to stderr");
  if (!polls) return;
  cmd.add_option_function<std::string>(
      "--poll-interval",
      [&o](const std::string& text) {
        auto d = ParseDuration(text);
        if (!d.ok()) throw CLI::ValidationError("--poll-interval", d.status().message());
        if (d->count() <= 0) throw CLI::ValidationError("--poll-interval", "must be positive");
        o.poll_interval = *d;
      },
      "how often progress is asked for (like 500ms or 2s; default " +
          FormatDuration(o.poll_interval) + ")");
}

void AddBuildFlags(CLI::App& cmd, std::filesystem::path& dir, cli::ProjectFlags& p) {
  cmd.add_option("dir", dir, "project directory (default: the current one)");
  AddOptionalFlag(cmd, "--project", p.project,
                  "project name (default: slipway.toml, then the directory's name)");
  AddOptionalFlag(cmd, "--context", p.context, "build context, relative to DIR (default \".\")");
  AddOptionalFlag(cmd, "--dockerfile", p.dockerfile,
                  "Dockerfile, relative to the context (default \"Dockerfile\")");
  // One value per occurrence, so `--build-arg A=1 DIR` leaves DIR to the positional.
  cmd.add_option("--build-arg", p.build_args, "KEY=VALUE build argument (repeatable)")
      ->allow_extra_args(false);
}

}  // namespace

void RegisterCliCommands(CLI::App& app) {
  {
    auto o = std::make_shared<cli::BuildCommandOptions>();
    o->common.poll_interval = std::chrono::seconds(1);
    CLI::App* cmd =
        app.add_subcommand("build", "build an image from a directory with a Dockerfile");
    AddBuildFlags(*cmd, o->dir, o->project);
    AddCommonFlags(*cmd, o->common, true);
    cmd->callback([o] {
      cli::CatchInterrupts();
      cli::Console console = cli::Console::ForProcess(o->common.json);
      if (int code = cli::RunBuildCommand(*o, console); code != 0) throw CLI::RuntimeError(code);
    });
  }
  {
    auto o = std::make_shared<cli::DeployCommandOptions>();
    CLI::App* cmd = app.add_subcommand("deploy", "build a directory and run it behind a URL");
    AddBuildFlags(*cmd, o->dir, o->project);
    cli::ProjectFlags& p = o->project;
    cmd->add_option("--image", o->image, "deploy this existing image instead of building DIR");
    AddOptionalFlag(*cmd, "--environment", p.environment, "environment (default production)");
    AddOptionalFlag(*cmd, "--branch", p.branch, "branch (default: git's current branch)");
    AddOptionalFlag(*cmd, "--replicas", p.replicas, "instances to run (default 1)");
    AddOptionalFlag(*cmd, "--cpu", p.cpu_millicores, "CPU per instance, millicores (default 500)");
    AddOptionalFlag(*cmd, "--memory", p.memory_mib, "memory per instance, MiB (default 256)");
    AddOptionalFlag(*cmd, "--port", p.port, "port the app listens on (it gets PORT)");
    AddOptionalFlag(*cmd, "--health-check-path", p.health_check_path,
                    "HTTP path whose 2xx/3xx marks an instance ready (default: TCP connect)");
    cmd->add_option("--env", p.env, "KEY=VALUE environment variable of the app (repeatable)")
        ->allow_extra_args(false);
    AddCommonFlags(*cmd, o->common, true);
    cmd->callback([o] {
      cli::CatchInterrupts();
      cli::Console console = cli::Console::ForProcess(o->common.json);
      if (int code = cli::RunDeployCommand(*o, console); code != 0) throw CLI::RuntimeError(code);
    });
  }
  {
    auto o = std::make_shared<cli::StatusCommandOptions>();
    CLI::App* cmd = app.add_subcommand("status", "show one deployment: status, steps, URLs");
    cmd->add_option("id", o->deployment_id, "deployment id (dep_...)")->required();
    AddCommonFlags(*cmd, o->common, false);
    cmd->callback([o] {
      cli::Console console = cli::Console::ForProcess(o->common.json);
      if (int code = cli::RunStatusCommand(*o, console); code != 0) throw CLI::RuntimeError(code);
    });
  }
  {
    auto o = std::make_shared<cli::ListCommandOptions>();
    CLI::App* cmd = app.add_subcommand("list", "list recent deployments");
    cmd->add_option("--project", o->project, "only this project's deployments");
    cmd->add_option("--limit", o->limit, "at most this many (default 20)");
    AddCommonFlags(*cmd, o->common, false);
    cmd->callback([o] {
      cli::Console console = cli::Console::ForProcess(o->common.json);
      if (int code = cli::RunListCommand(*o, console); code != 0) throw CLI::RuntimeError(code);
    });
  }
}

}  // namespace slipway::cmd
