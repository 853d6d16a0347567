#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cmd/commands.h"
#include "net/http_server.h"
#include "storage/s3_server.h"

namespace slipway::cmd {

void RegisterRunS3(CLI::App& run) {
  auto opts = std::make_shared<storage::S3ServerOptions>();
  CLI::App* s3 = run.add_subcommand("s3", "the embedded S3-compatible object store");
  s3->add_option("--listen", opts->listen, "address to listen on")
      ->envname("S3_LISTEN")
      ->capture_default_str();
  s3->add_option("--data", opts->data_dir, "directory holding the buckets")
      ->envname("S3_DATA_DIR")
      ->required();
  s3->add_option("--access-key", opts->access_key, "access key id clients sign with")
      ->envname("S3_ACCESS_KEY_ID")
      ->required();
  s3->add_option("--secret-key", opts->secret_key, "secret access key clients sign with")
      ->envname("S3_SECRET_ACCESS_KEY")
      ->required();
  s3->add_option("--region", opts->region, "region in signatures")
      ->envname("S3_REGION")
      ->capture_default_str();
  s3->add_option("--max-object-size", opts->max_object_size, "largest object accepted, bytes")
      ->envname("S3_MAX_OBJECT_SIZE")
      ->capture_default_str();
  s3->callback([opts] {
    net::BlockTerminationSignals();
    auto server = storage::S3Server::Start(*opts);
    if (!server.ok()) {
      spdlog::error("cannot start the object store: {}", server.status().message());
      throw CLI::RuntimeError(1);
    }
    spdlog::info("object store listening on {} (data in {})", (*server)->endpoint(), opts->data_dir);
    int sig = net::WaitForTerminationSignal();
    spdlog::info("signal {} received, shutting down", sig);
    (*server)->Shutdown();
  });
}

}  // namespace slipway::cmd
