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
      "how often progress is asked for when the control plane cannot stream it (like 500ms "
      "or 2s; default " +
          FormatDuration(o.poll_interval) + ")");
}

void AddBuildFlags(CLI::App& cmd, std::filesystem::path& dir, cli::ProjectFlags& p) {
  cmd.add_option("dir", dir, "project directory (default: the current one)");
  AddOptionalFlag(cmd, "--project", p.project,
                  "project name (default: slipway.toml, then the directory's name)");
  AddOptionalFlag(cmd, "--context", p.context, "build context, relative to DIR (default \".\")");
  AddOptionalFlag(cmd, "--dockerfile", p.dockerfile,
                  "Dockerfile, relative to the context (default \"Dockerfile\")");
  AddOptionalFlag(cmd, "--platform", p.platform,
                  "platform(s) to build for, comma-separated: linux/amd64,linux/arm64 gives one "
                  "multi-platform image (buildkit backend; default: the control plane's)");
  AddOptionalFlag(cmd, "--target", p.target, "the Dockerfile stage to build (default: the last)");
  cmd.add_flag("--no-cache", p.no_cache,
               "build every step again: no earlier build's image, no builder cache");
  // One value per occurrence, so `--build-arg A=1 DIR` leaves DIR to the positional.
  cmd.add_option("--build-arg", p.build_args, "KEY=VALUE build argument (repeatable)")
      ->allow_extra_args(false);
}

// Runs a command's callback with a console, turning a non-zero exit into CLI11's.
template <typename Options, typename Run>
void OnRun(CLI::App& cmd, std::shared_ptr<Options> o, Run run) {
  cmd.callback([o, run] {
    cli::Console console = cli::Console::ForProcess(o->common.json);
    if (int code = run(*o, console); code != 0) throw CLI::RuntimeError(code);
  });
}

void AddEnvTargetFlags(CLI::App& cmd, cli::EnvTarget& t) {
  AddOptionalFlag(cmd, "--project", t.project,
                  "project name (default: slipway.toml in --dir, then the directory's name)");
  cmd.add_option("--dir", t.dir, "project directory (default: the current one)");
  cmd.add_option("--environment", t.environment,
                 "only this environment (production, preview, ...; default: every environment)");
}

void RegisterTokenCommands(CLI::App& app) {
  CLI::App* token = app.add_subcommand("token", "the workspace's API tokens");
  token->require_subcommand(1);
  {
    auto o = std::make_shared<cli::TokenCreateCommandOptions>();
    CLI::App* cmd = token->add_subcommand("create", "issue a new API token (shown once)");
    cmd->add_option("--scope", o->scope, "deploy (everything) or read (look, change nothing)")
        ->capture_default_str();
    cmd->add_option_function<std::string>(
        "--expires",
        [o](const std::string& text) {
          auto d = ParseDuration(text);
          if (!d.ok()) throw CLI::ValidationError("--expires", d.status().message());
          o->expires = *d;
        },
        "the token stops working after this long (like 30d or 12h; default: never)");
    cmd->add_option("--name", o->name, "what the token is for (shown by `slipway token list`)");
    AddCommonFlags(*cmd, o->common, false);
    OnRun(*cmd, o, cli::RunTokenCreateCommand);
  }
  {
    auto o = std::make_shared<cli::TokenListCommandOptions>();
    CLI::App* cmd = token->add_subcommand("list", "list the workspace's tokens (never their values)");
    AddCommonFlags(*cmd, o->common, false);
    OnRun(*cmd, o, cli::RunTokenListCommand);
  }
  {
    auto o = std::make_shared<cli::TokenRevokeCommandOptions>();
    CLI::App* cmd = token->add_subcommand("revoke", "revoke a token: calls with it are refused");
    cmd->add_option("id", o->token_id, "token id (tok_...)")->required();
    AddCommonFlags(*cmd, o->common, false);
    OnRun(*cmd, o, cli::RunTokenRevokeCommand);
  }
}

void RegisterEnvCommands(CLI::App& app) {
  CLI::App* env = app.add_subcommand("env", "a project's environment variables and secrets");
  env->require_subcommand(1);
  {
    auto o = std::make_shared<cli::EnvSetCommandOptions>();
    CLI::App* cmd = env->add_subcommand(
        "set", "set a variable the project's instances get (from the next deployment on)");
    cmd->add_option("assignment", o->assignment, "KEY=VALUE")->required();
    cmd->add_flag("--secret", o->secret,
                  "store the value encrypted; it is never shown again, only given to instances");
    AddEnvTargetFlags(*cmd, o->target);
    AddCommonFlags(*cmd, o->common, false);
    OnRun(*cmd, o, cli::RunEnvSetCommand);
  }
  {
    auto o = std::make_shared<cli::EnvListCommandOptions>();
    CLI::App* cmd = env->add_subcommand("list", "list the project's variables (secrets without values)");
    AddEnvTargetFlags(*cmd, o->target);
    AddCommonFlags(*cmd, o->common, false);
    OnRun(*cmd, o, cli::RunEnvListCommand);
  }
  {
    auto o = std::make_shared<cli::EnvUnsetCommandOptions>();
    CLI::App* cmd = env->add_subcommand("unset", "remove a variable");
    cmd->add_option("name", o->name, "KEY")->required();
    AddEnvTargetFlags(*cmd, o->target);
    AddCommonFlags(*cmd, o->common, false);
    OnRun(*cmd, o, cli::RunEnvUnsetCommand);
  }
}

}  // namespace

void RegisterCliCommands(CLI::App& app) {
  RegisterTokenCommands(app);
  RegisterEnvCommands(app);
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
    cmd->add_flag("--fail-on-breaking", o->fail_on_breaking,
                  "when the app's OpenAPI spec breaks the live one, keep the environment's hosts "
                  "on the live deployment (this one answers on its own host)");
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
    cmd->add_flag("-f,--follow", o->follow,
                  "show its steps and build log as they happen until it is READY or FAILED");
    AddCommonFlags(*cmd, o->common, true);
    cmd->callback([o] {
      cli::CatchInterrupts();
      cli::Console console = cli::Console::ForProcess(o->common.json);
      if (int code = cli::RunStatusCommand(*o, console); code != 0) throw CLI::RuntimeError(code);
    });
  }
  {
    auto o = std::make_shared<cli::RedeployCommandOptions>();
    CLI::App* cmd = app.add_subcommand(
        "redeploy", "build a deployment's retained source again (same settings) and deploy it");
    cmd->add_option("id", o->deployment_id, "deployment id (dep_...)")->required();
    cmd->add_flag("--no-cache", o->no_cache, "build every step again, ignoring the builder's caches");
    AddCommonFlags(*cmd, o->common, true);
    cmd->callback([o] {
      cli::CatchInterrupts();
      cli::Console console = cli::Console::ForProcess(o->common.json);
      if (int code = cli::RunRedeployCommand(*o, console); code != 0) throw CLI::RuntimeError(code);
    });
  }
  {
    auto o = std::make_shared<cli::RollbackCommandOptions>();
    CLI::App* cmd = app.add_subcommand(
        "rollback", "move an environment's hosts back to an earlier READY deployment (no build)");
    cmd->add_option("dir", o->dir, "project directory (default: the current one)");
    AddOptionalFlag(*cmd, "--project", o->project,
                    "project name (default: slipway.toml, then the directory's name)");
    cmd->add_option("--environment", o->environment,
                    "environment (default: slipway.toml's, then production)");
    cmd->add_option("--to", o->to, "the deployment to go back to (default: the one before the live one)");
    AddCommonFlags(*cmd, o->common, false);
    cmd->callback([o] {
      cli::Console console = cli::Console::ForProcess(o->common.json);
      if (int code = cli::RunRollbackCommand(*o, console); code != 0) throw CLI::RuntimeError(code);
    });
  }
  {
    auto o = std::make_shared<cli::PromoteCommandOptions>();
    CLI::App* cmd = app.add_subcommand(
        "promote", "move an environment's host to a READY deployment of another environment or branch");
    cmd->add_option("id", o->deployment_id, "deployment id (dep_...)")->required();
    cmd->add_option("--environment", o->environment, "environment to serve (default production)");
    AddCommonFlags(*cmd, o->common, false);
    cmd->callback([o] {
      cli::Console console = cli::Console::ForProcess(o->common.json);
      if (int code = cli::RunPromoteCommand(*o, console); code != 0) throw CLI::RuntimeError(code);
    });
  }
  {
    auto o = std::make_shared<cli::DeleteCommandOptions>();
    CLI::App* cmd = app.add_subcommand(
        "delete", "remove a deployment's instances, routes and hosts (and its unused source)");
    cmd->add_option("id", o->deployment_id, "deployment id (dep_...)")->required();
    cmd->add_flag("--force", o->force, "also when it is what an environment serves now");
    AddCommonFlags(*cmd, o->common, false);
    cmd->callback([o] {
      cli::Console console = cli::Console::ForProcess(o->common.json);
      if (int code = cli::RunDeleteCommand(*o, console); code != 0) throw CLI::RuntimeError(code);
    });
  }
  {
    auto o = std::make_shared<cli::LogsCommandOptions>();
    o->common.poll_interval = std::chrono::milliseconds(500);
    CLI::App* cmd = app.add_subcommand("logs", "show what a deployment's instances print");
    cmd->add_option("id", o->deployment_id, "deployment id (dep_...)")->required();
    cmd->add_flag("-f,--follow", o->follow, "keep showing new lines until Ctrl-C");
    cmd->add_option("--instance", o->instance, "only this replica (0, 1, ...)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option_function<std::string>(
        "--since",
        [o](const std::string& text) {
          auto d = ParseDuration(text);
          if (!d.ok()) throw CLI::ValidationError("--since", d.status().message());
          o->since = *d;
        },
        "only lines from the last while (like 10m or 1h)");
    cmd->add_option("--tail", o->tail, "without --since, the last this many lines per instance (100)")
        ->check(CLI::Range(1, 100000));
    AddCommonFlags(*cmd, o->common, true);
    cmd->callback([o] {
      cli::CatchInterrupts();
      cli::Console console = cli::Console::ForProcess(o->common.json);
      if (int code = cli::RunLogsCommand(*o, console); code != 0) throw CLI::RuntimeError(code);
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
