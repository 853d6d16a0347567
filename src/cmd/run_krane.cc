#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cmd/commands.h"
#include "krane/krane_server.h"
#include "net/http_server.h"

namespace slipway::cmd {

void RegisterRunKrane(CLI::App& run) {
  auto opts = std::make_shared<krane::KraneServerOptions>();
  CLI::App* cmd = run.add_subcommand("krane", "krane: runs deployments' instances on containers (docker) or pods (kubernetes)");
  cmd->add_option("--listen", opts->listen, "address to serve the krane API on")
      ->envname("KRANE_LISTEN")
      ->capture_default_str();
  cmd->add_option("--token", opts->token, "shared token every caller must send as a bearer token")
      ->envname("KRANE_TOKEN")
      ->required();
  cmd->add_option("--backend", opts->backend.backend, "where instances run: docker or kubernetes")
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
  AddDockerKraneFlags(*cmd, opts->backend, "");
  AddKubernetesKraneFlags(*cmd, opts->backend, "");
  cmd->callback([opts] {
    net::BlockTerminationSignals();
    auto server = krane::KraneServer::Start(*opts);
    if (!server.ok()) {
      spdlog::error("cannot start krane: {}", server.status().message());
      throw CLI::RuntimeError(1);
    }
    spdlog::info("krane listening on {} (backend {})", (*server)->address(),
                 (*server)->backend_name());
    int sig = net::WaitForTerminationSignal();
    spdlog::info("signal {} received, shutting down", sig);
    (*server)->Shutdown();
  });
}

}  // namespace slipway::cmd
