// The slipway executable: every service and the CLI, as subcommands.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "base/log_format.h"
#include "cmd/commands.h"

int main(int argc, char** argv) {
  // Logs go to stderr: stdout belongs to command output (URLs, --json results).
  spdlog::set_default_logger(spdlog::stderr_color_mt("slipway"));
  CLI::App app{"slipway: from a directory with a Dockerfile to a live URL"};
  app.require_subcommand(1);
  // Subcommands pass the options below up, so `slipway run ctrl --log-format json` works too.
  app.fallthrough();
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->envname("SLIPWAY_LOG_LEVEL");
  std::string log_format = "text";
  app.add_option("--log-format", log_format,
                 "text (a human line) or json (one JSON object per line: time, level, logger, "
                 "message)")
      ->envname("SLIPWAY_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.parse_complete_callback([&] {
    spdlog::set_level(spdlog::level::from_str(log_level));
    (void)slipway::SetLogFormat(log_format);  // the check above admits only valid formats
  });

  CLI::App* run = app.add_subcommand("run", "run one service (s3, ...)");
  run->require_subcommand(1);
  slipway::cmd::RegisterRunS3(*run);
  slipway::cmd::RegisterRunKrane(*run);
  slipway::cmd::RegisterRunCtrl(*run);
  slipway::cmd::RegisterRunGateway(*run);

  slipway::cmd::RegisterS3Tools(app);
  slipway::cmd::RegisterCliCommands(app);
  slipway::cmd::RegisterDev(app);

  CLI11_PARSE(app, argc, argv);
  return 0;
}
