// `slipway s3 ...`: small operator tools for an S3-compatible store (ours or any other).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>

#include "base/duration.h"
#include "cmd/commands.h"
#include "storage/s3_client.h"

namespace slipway::cmd {
namespace {

struct StoreFlags {
  storage::S3ClientOptions client;
  std::string location;  // s3://bucket/key
};

void AddStoreFlags(CLI::App& cmd, StoreFlags& f) {
  f.client.endpoint = "http://127.0.0.1:9000";
  cmd.add_option("--endpoint", f.client.endpoint, "the store's URL")
      ->envname("S3_ENDPOINT")
      ->capture_default_str();
  cmd.add_option("--public-endpoint", f.client.public_endpoint,
                 "URL that presigned links point at (default: --endpoint)")
      ->envname("S3_PUBLIC_ENDPOINT");
  cmd.add_option("--access-key", f.client.credentials.access_key)
      ->envname("S3_ACCESS_KEY_ID")
      ->required();
  cmd.add_option("--secret-key", f.client.credentials.secret_key)
      ->envname("S3_SECRET_ACCESS_KEY")
      ->required();
  cmd.add_option("--region", f.client.region)->envname("S3_REGION")->capture_default_str();
}

// "s3://bucket/some/key" -> ("bucket", "some/key").
bool SplitLocation(const std::string& location, std::string* bucket, std::string* key) {
  constexpr std::string_view kScheme = "s3://";
  if (location.rfind(kScheme, 0) != 0) return false;
  std::string rest = location.substr(kScheme.size());
  size_t slash = rest.find('/');
  *bucket = rest.substr(0, slash);
  *key = slash == std::string::npos ? "" : rest.substr(slash + 1);
  return !bucket->empty();
}

}  // namespace

void RegisterS3Tools(CLI::App& app) {
  CLI::App* s3 = app.add_subcommand("s3", "tools for an S3-compatible store");
  s3->require_subcommand(1);

  auto presign = std::make_shared<StoreFlags>();
  auto method = std::make_shared<std::string>("GET");
  auto expires = std::make_shared<std::string>("15m");
  CLI::App* p = s3->add_subcommand("presign", "print a presigned URL for s3://bucket/key");
  AddStoreFlags(*p, *presign);
  p->add_option("--method", *method, "GET or PUT")
      ->check(CLI::IsMember({"GET", "PUT"}))
      ->capture_default_str();
  p->add_option("--expires", *expires, "how long the URL works (max 7 days)")->capture_default_str();
  p->add_option("location", presign->location, "s3://bucket/key")->required();
  p->callback([presign, method, expires] {
    std::string bucket, key;
    if (!SplitLocation(presign->location, &bucket, &key) || key.empty()) {
      throw CLI::ValidationError("location", "write the object as s3://bucket/key");
    }
    auto d = ParseDuration(*expires);
    if (!d.ok()) throw CLI::ValidationError("--expires", d.status().message());
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(*d);
    if (secs.count() < 1 || secs > std::chrono::hours(24 * 7)) {
      throw CLI::ValidationError("--expires", "a presigned URL lives between 1s and 7 days (168h)");
    }
    storage::S3Client client(presign->client);
    std::cout << (*method == "PUT" ? client.PresignPut(bucket, key, secs)
                                   : client.PresignGet(bucket, key, secs))
              << "\n";
  });

  auto mb = std::make_shared<StoreFlags>();
  CLI::App* m = s3->add_subcommand("mb", "create a bucket: s3://bucket");
  AddStoreFlags(*m, *mb);
  m->add_option("location", mb->location, "s3://bucket")->required();
  m->callback([mb] {
    std::string bucket, key;
    if (!SplitLocation(mb->location, &bucket, &key)) {
      throw CLI::ValidationError("location", "write the bucket as s3://bucket");
    }
    storage::S3Client client(mb->client);
    Status st = client.CreateBucket(bucket);
    if (!st.ok() && st.code() != Code::kAlreadyExists) {
      std::cerr << "slipway: " << st.message() << "\n";
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace slipway::cmd
