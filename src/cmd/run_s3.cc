#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <string>

#include "cmd/commands.h"
#include "net/http_server.h"
#include "storage/s3_server.h"

namespace slipway::cmd {

// "5368709120", "64MiB", "5GiB", "10MB": binary (KiB, MiB, GiB, TiB) and decimal (KB, MB, GB,
// TB) units, as operators write sizes.
std::string ParseSize(const std::string& text, uint64_t* out) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::string unit = text.substr(digits);
  static const std::pair<const char*, uint64_t> kUnits[] = {{"", 1},
                                                            {"B", 1},
                                                            {"KiB", 1ull << 10},
                                                            {"MiB", 1ull << 20},
                                                            {"GiB", 1ull << 30},
                                                            {"TiB", 1ull << 40},
                                                            {"KB", 1000},
                                                            {"MB", 1000000},
                                                            {"GB", 1000000000},
                                                            {"TB", 1000000000000}};
  if (digits == 0 || digits > 15) {
    return "the size \"" + text + "\" is not a number of bytes; write it like 5368709120 or 64MiB";
  }
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) {
      *out = std::stoull(text.substr(0, digits)) * factor;
      return "";
    }
  }
  return "the size \"" + text +
         "\" has an unknown unit; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB";
}

namespace {

}  // namespace

void RegisterRunS3(CLI::App& run) {
  auto opts = std::make_shared<storage::S3ServerOptions>();
  CLI::App* s3 = run.add_subcommand("s3", "the embedded S3-compatible object store");
  s3->add_option("--listen", opts->listen, "address to listen on")
      ->envname("S3_LISTEN")
      ->capture_default_str();
  opts->data_dir = DefaultDataDir() + "/s3";
  s3->add_option("--data", opts->data_dir, "directory holding the buckets")
      ->envname("S3_DATA_DIR")
      ->capture_default_str();
  s3->add_option("--access-key", opts->access_key, "access key id clients sign with")
      ->envname("S3_ACCESS_KEY_ID")
      ->required();
  s3->add_option("--secret-key", opts->secret_key, "secret access key clients sign with")
      ->envname("S3_SECRET_ACCESS_KEY")
      ->required();
  s3->add_option("--region", opts->region, "region in signatures")
      ->envname("S3_REGION")
      ->capture_default_str();
  s3->add_option_function<std::string>(
        "--max-object-size",
        [opts](const std::string& text) {
          std::string error = ParseSize(text, &opts->max_object_size);
          if (!error.empty()) throw CLI::ValidationError("--max-object-size", error);
        },
        "largest object accepted: bytes, or with a unit (64MiB, 5GiB); default 5GiB")
      ->envname("S3_MAX_OBJECT_SIZE");
  s3->add_flag("!--no-sigv2", opts->allow_sigv2,
               "refuse Signature Version 2 requests and presigned URLs (SigV4 only)");
  s3->callback([opts] {
    net::BlockTerminationSignals();
    auto server = storage::S3Server::Start(*opts);
    if (!server.ok()) {
      spdlog::error("cannot start the object store: {}", server.status().message());
      throw CLI::RuntimeError(1);
    }
    spdlog::info("object store listening on {} (data in {})", (*server)->endpoint(),
                 opts->data_dir);
    int sig = net::WaitForTerminationSignal();
    spdlog::info("signal {} received, shutting down", sig);
    (*server)->Shutdown();
  });
}

}  // namespace slipway::cmd
