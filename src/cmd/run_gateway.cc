// `slipway run gateway`: the data plane as its own process: routes requests by Host to the
// RUNNING instances of the deployment each host is routed to (routes from the partition DB).
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <limits>

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

// A count or size flag (connections, bytes, threads) stored into target, with its environment
// twin; --help shows the default unless the default is "no limit".
template <typename T>
void AddLimitFlag(CLI::App& cmd, const std::string& name, T& target, const std::string& help,
                  const std::string& env) {
  CLI::Option* option = cmd.add_option(name, target, help)->envname(env);
  if (target != std::numeric_limits<T>::max()) option->capture_default_str();
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
  AddLimitFlag(*cmd, "--threads", opts->threads, "event-loop threads (0: one per core)",
               "GATEWAY_THREADS");
  AddLimitFlag(*cmd, "--max-connections", opts->max_connections,
               "client connections served at once (more are answered 503)",
               "GATEWAY_MAX_CONNECTIONS");
  AddLimitFlag(*cmd, "--max-header-bytes", opts->max_header_bytes,
               "largest request head accepted (431 beyond)", "GATEWAY_MAX_HEADER_BYTES");
  AddLimitFlag(*cmd, "--max-body-bytes", opts->max_body_bytes,
               "largest request body accepted (413 beyond; default: no limit)",
               "GATEWAY_MAX_BODY_BYTES");
  AddDurationFlag(*cmd, "--header-timeout", opts->header_timeout,
                  "how long a client may take to send a whole request head (10s)",
                  "GATEWAY_HEADER_TIMEOUT");
  AddDurationFlag(*cmd, "--client-timeout", opts->client_timeout,
                  "how long a client may stay silent mid-body or not read the response (60s)",
                  "GATEWAY_CLIENT_TIMEOUT");
  AddDurationFlag(*cmd, "--client-idle-timeout", opts->client_idle_timeout,
                  "how long an idle keep-alive client connection stays open (60s)",
                  "GATEWAY_CLIENT_IDLE_TIMEOUT");
  AddLimitFlag(*cmd, "--upstream-keepalive", opts->upstream_keepalive,
               "idle connections kept per instance and event-loop thread",
               "GATEWAY_UPSTREAM_KEEPALIVE");
  cmd->add_flag("--access-log", opts->access_log, "log one line per request")
      ->envname("GATEWAY_ACCESS_LOG");
  opts->admin_listen = kDefaultGatewayAdminListen;
  cmd->add_option("--admin-listen", opts->admin_listen,
                  "address of the admin listener: /healthz, /readyz and /metrics (the routed "
                  "port leaves every path to the apps); empty turns it off")
      ->envname("GATEWAY_ADMIN_LISTEN")
      ->capture_default_str();
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
