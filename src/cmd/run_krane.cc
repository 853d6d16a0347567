#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cmd/commands.h"
#include "krane/backend.h"
#include "krane/krane_service.h"
#include "net/connect.h"
#include "net/http_server.h"

namespace slipway::cmd {

void RegisterRunKrane(CLI::App& run) {
  struct Options {
    std::string listen = "127.0.0.1:7070";
    std::string token;
    krane::KraneBackendConfig backend;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = run.add_subcommand("krane", "krane: runs deployments' instances on containers");
  cmd->add_option("--listen", opts->listen, "address to serve the krane API on")
      ->envname("KRANE_LISTEN")
      ->capture_default_str();
  cmd->add_option("--token", opts->token, "shared token every caller must send as a bearer token")
      ->envname("KRANE_TOKEN")
      ->required();
  cmd->add_option("--backend", opts->backend.backend, "where instances run: docker (or kubernetes)")
      ->envname("KRANE_BACKEND")
      ->capture_default_str();
  cmd->add_option("--docker-host", opts->backend.docker_host,
                  "dockerd address for the docker backend")
      ->envname("DOCKER_HOST")
      ->capture_default_str();
  cmd->add_option("--network-mode", opts->backend.network_mode,
                  "how the docker backend networks containers: host (the app binds the loopback "
                  "port krane gives it as PORT) or bridge (the app binds its own port, PORT, and "
                  "dockerd publishes it on a loopback port)")
      ->envname("KRANE_NETWORK_MODE")
      ->capture_default_str();
  cmd->callback([opts] {
    net::BlockTerminationSignals();
    if (opts->token.empty()) {
      spdlog::error("the krane token is empty; set --token or KRANE_TOKEN to a secret string");
      throw CLI::RuntimeError(1);
    }
    auto backend = krane::MakeKraneBackend(opts->backend);
    if (!backend.ok()) {
      spdlog::error("cannot start krane: {}", backend.status().message());
      throw CLI::RuntimeError(1);
    }
    krane::KraneService service(**backend, opts->token);
    net::ConnectRouter router;
    service.Register(router);
    net::HttpServer::Options server_options;
    server_options.listen = opts->listen;
    auto server = net::HttpServer::Start(server_options, router.AsHandler());
    if (!server.ok()) {
      spdlog::error("cannot start krane on {}: {}", opts->listen, server.status().message());
      throw CLI::RuntimeError(1);
    }
    spdlog::info("krane listening on {} (backend {})", (*server)->address(), (*backend)->name());
    int sig = net::WaitForTerminationSignal();
    spdlog::info("signal {} received, shutting down", sig);
    (*server)->Shutdown();
  });
}

}  // namespace slipway::cmd
