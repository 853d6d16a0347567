// The embedded S3-compatible object store: `slipway run s3`.
//
// Serves the S3 REST API (path-style) over net::HttpServer on a filesystem-backed ObjectStore.
// Every request is authenticated with SigV4 or, unless turned off, SigV2 (header or presigned
// query); see s3_server.cc and docs/s3-compatibility.md for the operations supported. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"

namespace slipway::storage {

struct S3ServerOptions {
  std::string listen = "127.0.0.1:9000";
  std::string data_dir;    // required
  std::string access_key;  // required
  std::string secret_key;  // required
  std::string region = "us-east-1";
  uint64_t max_object_size = 5ull * 1024 * 1024 * 1024;  // 5 GiB
  // Signature Version 2 (header and presigned query) for older clients; SigV4 is always on.
  bool allow_sigv2 = true;
};

class S3Server {
 public:
  static Result<std::unique_ptr<S3Server>> Start(const S3ServerOptions& options);
  virtual ~S3Server() = default;
  virtual uint16_t port() const = 0;
  virtual std::string endpoint() const = 0;  // "http://127.0.0.1:9000"
  virtual void Shutdown() = 0;
};

}  // namespace slipway::storage
