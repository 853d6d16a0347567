// `slipway run ctrl`: the control plane as its own process (production, tests).
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <limits>

#include "base/duration.h"
#include "cmd/commands.h"
#include "ctrl/ctrl_server.h"
#include "net/http_server.h"

namespace slipway::cmd {

namespace {

// A duration flag ("250ms", "5m") with its environment twin, parsed into out.
void AddDurationFlag(CLI::App& cmd, const char* name, const char* env,
                     std::chrono::milliseconds& out, const char* help) {
  cmd.add_option_function<std::string>(
         name,
         [&out, name](const std::string& text) {
           auto d = ParseDuration(text);
           if (!d.ok()) throw CLI::ValidationError(name, d.status().message());
           out = *d;
         },
         help)
      ->envname(env);
}

}  // namespace

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
  cmd.add_option("--build-backend", o.build.backend,
                 "where images are built: docker (the local dockerd), buildkit (a BuildKit "
                 "daemon, BUILDKIT_HOST) or depot (a Depot machine per build, DEPOT_TOKEN)")
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
  cmd.add_option("--build-platform", o.build.platform,
                 "platform images are built for; a comma list (linux/amd64,linux/arm64) gives one "
                 "multi-platform image (buildkit backend)")
      ->envname("BUILD_PLATFORM")
      ->capture_default_str();
  cmd.add_option("--buildkit-host", o.build.buildkit_host,
                 "buildkit backend: the daemon, unix:///path or tcp://host:port")
      ->envname("BUILDKIT_HOST")
      ->capture_default_str();
  cmd.add_option("--buildkit-tls-ca", o.build.buildkit_tls_ca,
                 "buildkit backend, mTLS: PEM file of the CA that signed the daemon's certificate")
      ->envname("BUILDKIT_TLS_CA");
  cmd.add_option("--buildkit-tls-cert", o.build.buildkit_tls_cert,
                 "buildkit backend, mTLS: PEM file of our client certificate")
      ->envname("BUILDKIT_TLS_CERT");
  cmd.add_option("--buildkit-tls-key", o.build.buildkit_tls_key,
                 "buildkit backend, mTLS: PEM file of our client key")
      ->envname("BUILDKIT_TLS_KEY");
  cmd.add_option("--buildkit-tls-server-name", o.build.buildkit_tls_server_name,
                 "buildkit backend, mTLS: the name in the daemon's certificate (default: the host)")
      ->envname("BUILDKIT_TLS_SERVER_NAME");
  cmd.add_option("--buildkit-cache", o.build.buildkit_cache,
                 "buildkit backend: registry (a layer cache per project in REGISTRY) or none")
      ->envname("BUILDKIT_CACHE")
      ->capture_default_str();
  cmd.add_option("--buildkit-cache-repository", o.build.buildkit_cache_repository,
                 "buildkit backend: repository in REGISTRY holding the caches, tagged by project")
      ->envname("BUILDKIT_CACHE_REPOSITORY")
      ->capture_default_str();
  cmd.add_option("--registry-username", o.build.registry_username,
                 "username for pushing to REGISTRY (buildkit backend)")
      ->envname("REGISTRY_USERNAME");
  cmd.add_option("--registry-password", o.build.registry_password,
                 "password for pushing to REGISTRY (buildkit backend)")
      ->envname("REGISTRY_PASSWORD");
  cmd.add_option("--docker-config", o.build.docker_config,
                 "directory of a docker config.json whose \"auths\" give registry credentials "
                 "(buildkit backend; default ~/.docker)")
      ->envname("DOCKER_CONFIG");
  cmd.add_option("--depot-token", o.build.depot_token,
                 "depot backend: a Depot organization token (projects, builds, registry pushes)")
      ->envname("DEPOT_TOKEN");
  cmd.add_option("--depot-api-url", o.build.depot_api_url, "depot backend: Depot's API")
      ->envname("DEPOT_API_URL")
      ->capture_default_str();
  cmd.add_option("--depot-org", o.build.depot_org,
                 "depot backend: the Depot organization id, for a token of several organizations")
      ->envname("DEPOT_ORG");
  cmd.add_option("--depot-region", o.build.depot_region,
                 "depot backend: the region of the Depot projects slipway creates")
      ->envname("DEPOT_REGION")
      ->capture_default_str();
  cmd.add_option("--depot-cache-keep-gb", o.build.depot_cache_keep_gb,
                 "depot backend: layer cache size of each new Depot project, in GB")
      ->envname("DEPOT_CACHE_KEEP_GB")
      ->capture_default_str();
  cmd.add_option("--depot-cache-keep-days", o.build.depot_cache_keep_days,
                 "depot backend: how long each new Depot project keeps cache layers (0: no limit)")
      ->envname("DEPOT_CACHE_KEEP_DAYS")
      ->capture_default_str();
  cmd.add_option("--depot-registry", o.build.depot_registry,
                 "depot backend: the registry images are pushed to, as <registry>/<depot project>")
      ->envname("DEPOT_REGISTRY")
      ->capture_default_str();
  AddDurationFlag(cmd, "--depot-machine-timeout", "DEPOT_MACHINE_TIMEOUT", o.build.depot_machine_timeout,
                  "depot backend: how long Depot may keep a build's machine pending (5m)");
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
  AddDurationFlag(cmd, "--retention-grace", "RETENTION_GRACE", o.retention.grace,
                "how long a superseded deployment keeps running, so a rollback to it is instant, "
                "before its instances are stopped (15m)");
  cmd.add_option("--retention-keep", o.retention.keep,
                 "per environment, the newest deployments whose source is kept for redeploys and "
                 "rollbacks (10); older sources are deleted")
      ->envname("RETENTION_KEEP")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  AddDurationFlag(cmd, "--retention-interval", "RETENTION_INTERVAL", o.retention.interval,
                "how often the retention policy is applied to every project (1m; 0 turns it off)");
  cmd.add_option("--workers", o.workers, "workflow runs executed at once")
      ->envname("CTRL_WORKERS")
      ->capture_default_str();
  cmd.add_option("--max-connections", o.max_connections,
                 "client connections served at once (a CLI following a deployment holds one); "
                 "past it clients get 503 naming this setting. Each is an open file: keep "
                 "ulimit -n above it")
      ->envname("CTRL_MAX_CONNECTIONS")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  AddDurationFlag(cmd, "--wait-interval", "WAIT_INTERVAL", o.wait_interval,
                  "how often the wait step also asks krane with GetDeployment, besides following its "
                  "WatchDeployment stream: the fallback for a krane without the stream and the "
                  "safety net against a missed event (1s)");
  AddDurationFlag(cmd, "--wait-deadline", "WAIT_DEADLINE", o.wait_deadline,
                  "how long every instance has to become ready (5m)");
  cmd.add_option("--max-context-bytes", o.max_context_bytes,
                 "the largest build context (gzip'd tar) accepted, in bytes; larger ones are "
                 "refused before they are uploaded")
      ->envname("MAX_CONTEXT_BYTES")
      ->check(CLI::Range(uint64_t{1}, std::numeric_limits<uint64_t>::max()))
      ->capture_default_str();
  AddDurationFlag(cmd, "--build-timeout", "BUILD_TIMEOUT", o.build_timeout,
                  "a build still going after this long is stopped and fails (30m; 0: no limit)");
  cmd.add_option("--max-build-log-bytes", o.max_build_log_bytes,
                 "bytes of log kept per build; past it the log is cut with a line saying so "
                 "(0: no cap)")
      ->envname("MAX_BUILD_LOG_BYTES")
      ->capture_default_str();
  cmd.add_option("--max-concurrent-builds", o.max_concurrent_builds,
                 "builds queued or running at once per workspace; more are refused (0: no cap)")
      ->envname("MAX_CONCURRENT_BUILDS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--secret-key", o.secret_key,
                 "64 hex digits: the AES-256-GCM key secrets are stored under (`openssl rand -hex "
                 "32`); without it `slipway env set --secret` is refused")
      ->envname("SLIPWAY_SECRET_KEY");
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
