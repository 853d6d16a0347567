// `slipway run gateway`: the data plane as its own process: routes requests by Host to the
// RUNNING instances of the deployment each host is routed to (routes from the partition DB).
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "base/duration.h"
#include "cmd/commands.h"
#include "gateway/gateway_server.h"
#include "net/http_server.h"

namespace slipway::cmd {

namespace {

// A duration flag ("250ms", "2s") stored into target.
void AddDurationFlag(CLI::App& cmd, const std::string& name, std::chrono::milliseconds& target,
                     const std::string& help, const std::string& env) {
  cmd.add_option_function<std::string>(
         name,
         [&target, name](const std::string& text) {
           auto d = ParseDuration(text);
           if (!d.ok()) throw CLI::ValidationError(name, d.status().message());
           target = *d;
         },
         help)
      ->envname(env);
}

}  // namespace

void RegisterRunGateway(CLI::App& run) {
  auto opts = std::make_shared<gateway::GatewayOptions>();
  CLI::App* cmd =
      run.add_subcommand("gateway", "the gateway: routes requests by Host to deployments");
  cmd->add_option("--listen", opts->listen, "address to accept traffic on")
      ->envname("GATEWAY_LISTEN")
      ->capture_default_str();
  cmd->add_option(
         "--partition-database", opts->partition_database,
         "partition database (gateway routes, instances): SQLite path or postgresql:// URL")
      ->envname("PARTITION_DATABASE_URL");
  AddDurationFlag(*cmd, "--refresh-interval", opts->refresh_interval,
                  "how often routes are reloaded from the partition database (250ms)",
                  "GATEWAY_REFRESH_INTERVAL");
  AddDurationFlag(*cmd, "--upstream-connect-timeout", opts->upstream_connect_timeout,
                  "how long connecting to an instance may take (5s)",
                  "GATEWAY_UPSTREAM_CONNECT_TIMEOUT");
  AddDurationFlag(*cmd, "--upstream-idle-timeout", opts->upstream_idle_timeout,
                  "how long an instance may stay silent mid-request (60s)",
                  "GATEWAY_UPSTREAM_IDLE_TIMEOUT");
  AddDurationFlag(*cmd, "--refused-instance-cooldown", opts->refused_instance_cooldown,
                  "how long an instance that refused a connection is passed over (2s)",
                  "GATEWAY_REFUSED_INSTANCE_COOLDOWN");
  cmd->add_option("--max-connections", opts->max_connections, "client connections served at once")
      ->envname("GATEWAY_MAX_CONNECTIONS")
      ->capture_default_str();
  cmd->add_flag("--access-log", opts->access_log, "log one line per request")
      ->envname("GATEWAY_ACCESS_LOG");
  cmd->callback([opts] {
    net::BlockTerminationSignals();
    auto server = gateway::GatewayServer::Start(*opts);
    if (!server.ok()) {
      spdlog::error("cannot start the gateway: {}", server.status().message());
      throw CLI::RuntimeError(1);
    }
    int sig = net::WaitForTerminationSignal();
    spdlog::info("signal {} received, shutting down", sig);
    (*server)->Shutdown();
  });
}

}  // namespace slipway::cmd
