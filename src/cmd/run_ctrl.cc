// `slipway run ctrl`: the control plane as its own process (production, tests).
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "base/duration.h"
#include "cmd/commands.h"
#include "ctrl/ctrl_server.h"
#include "net/http_server.h"

namespace slipway::cmd {

void AddCtrlFlags(CLI::App& cmd, ctrl::CtrlOptions& o) {
  cmd.add_option("--listen", o.listen, "address to serve the ctrl API on")
      ->envname("CTRL_LISTEN")
      ->capture_default_str();
  cmd.add_option("--database", o.database_url,
                 "main database: a SQLite file path or a postgresql:// URL")
      ->envname("DATABASE_URL");
  cmd.add_option("--partition-database", o.partition_database_url,
                 "partition database (instances, gateway routes): SQLite path or postgresql:// URL")
      ->envname("PARTITION_DATABASE_URL");
  cmd.add_option("--s3-endpoint", o.s3.endpoint, "where ctrl reaches the object store")
      ->envname("S3_ENDPOINT");
  cmd.add_option("--s3-public-endpoint", o.s3.public_endpoint,
                 "where presigned URLs point (default: --s3-endpoint)")
      ->envname("S3_PUBLIC_ENDPOINT");
  cmd.add_option("--s3-region", o.s3.region)->envname("S3_REGION")->capture_default_str();
  cmd.add_option("--s3-access-key", o.s3.credentials.access_key)->envname("S3_ACCESS_KEY_ID");
  cmd.add_option("--s3-secret-key", o.s3.credentials.secret_key)->envname("S3_SECRET_ACCESS_KEY");
  cmd.add_option("--bucket", o.bucket, "bucket holding build contexts")
      ->envname("S3_BUCKET")
      ->capture_default_str();
  cmd.add_option("--build-backend", o.build.backend, "docker (depot, buildkit)")
      ->envname("BUILD_BACKEND")
      ->capture_default_str();
  cmd.add_option("--docker-host", o.build.docker_host, "dockerd address for the docker backend")
      ->envname("DOCKER_HOST")
      ->capture_default_str();
  cmd.add_option("--docker-builder", o.build.docker_builder,
                 "docker backend: buildkit, classic, or auto (BuildKit unless dockerd refuses it)")
      ->envname("DOCKER_BUILDER")
      ->capture_default_str();
  cmd.add_option("--registry", o.build.registry,
                 "registry images are pushed to (\"127.0.0.1:5000\"); empty keeps them local")
      ->envname("REGISTRY");
  cmd.add_option("--build-platform", o.build.platform)
      ->envname("BUILD_PLATFORM")
      ->capture_default_str();
  cmd.add_option("--krane-url", o.krane_url, "krane's address (\"http://127.0.0.1:7070\")")
      ->envname("KRANE_URL");
  cmd.add_option("--krane-token", o.krane_token, "the token krane expects")->envname("KRANE_TOKEN");
  cmd.add_option("--domain", o.apex_domain, "apex under which deployments get hostnames")
      ->envname("SLIPWAY_DOMAIN")
      ->capture_default_str();
  cmd.add_option("--gateway-port", o.gateway_public_port,
                 "the port clients reach the gateway on, used in deployment URLs (80 omits it)")
      ->envname("GATEWAY_PUBLIC_PORT")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  cmd.add_option_function<std::string>(
         "--workflow-lease",
         [&o](const std::string& text) {
           auto d = ParseDuration(text);
           if (!d.ok()) throw CLI::ValidationError("--workflow-lease", d.status().message());
           if (d->count() < 1000) {
             throw CLI::ValidationError("--workflow-lease", "use at least 1s");
           }
           o.lease_duration = *d;
         },
         "how long a run stays with a ctrl that stopped answering before another takes it (15s)")
      ->envname("WORKFLOW_LEASE");
  cmd.add_option("--workers", o.workers, "workflow runs executed at once")
      ->envname("CTRL_WORKERS")
      ->capture_default_str();
  cmd.add_option_function<std::string>(
         "--wait-interval",
         [&o](const std::string& text) {
           auto d = ParseDuration(text);
           if (!d.ok()) throw CLI::ValidationError("--wait-interval", d.status().message());
           o.wait_interval = *d;
         },
         "how often krane is asked about instances (1s)")
      ->envname("WAIT_INTERVAL");
  cmd.add_option_function<std::string>(
         "--wait-deadline",
         [&o](const std::string& text) {
           auto d = ParseDuration(text);
           if (!d.ok()) throw CLI::ValidationError("--wait-deadline", d.status().message());
           o.wait_deadline = *d;
         },
         "how long every instance has to become ready (5m)")
      ->envname("WAIT_DEADLINE");
}

void RegisterRunCtrl(CLI::App& run) {
  auto opts = std::make_shared<ctrl::CtrlOptions>();
  auto token_workspace = std::make_shared<std::string>();
  CLI::App* cmd = run.add_subcommand("ctrl", "the control plane: builds and deployments");
  AddCtrlFlags(*cmd, *opts);
  cmd->add_option("--issue-token", *token_workspace,
                  "create this workspace if missing, issue an API token for it and print the "
                  "token on stdout before serving");
  cmd->callback([opts, token_workspace] {
    net::BlockTerminationSignals();
    auto server = ctrl::CtrlServer::Start(*opts);
    if (!server.ok()) {
      spdlog::error("cannot start ctrl: {}", server.status().message());
      throw CLI::RuntimeError(1);
    }
    if (!token_workspace->empty()) {
      auto token = (*server)->IssueToken(*token_workspace);
      if (!token.ok()) {
        spdlog::error("cannot issue a token: {}", token.status().message());
        throw CLI::RuntimeError(1);
      }
      fmt::print("{}\n", *token);
      std::fflush(stdout);
    }
    spdlog::info("ctrl listening on {}", (*server)->endpoint());
    int sig = net::WaitForTerminationSignal();
    spdlog::info("signal {} received, shutting down", sig);
    (*server)->Shutdown();
  });
}

}  // namespace slipway::cmd
