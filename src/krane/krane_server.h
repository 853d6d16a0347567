// krane as one object: its backend, the DeploymentService over Connect on an HTTP server, and
// the operational endpoints (/healthz, /readyz: the backend's engine answers, /metrics: every
// RPC counted). `slipway run krane` runs one; `slipway dev` runs one in-process.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "krane/backend.h"

namespace slipway::krane {

struct KraneServerOptions {
  std::string listen = "127.0.0.1:7070";  // KRANE_LISTEN; port 0 picks a free one
  std::string token;                      // KRANE_TOKEN: every caller's bearer token
  KraneBackendConfig backend;
};

class KraneServer {
 public:
  // Makes the backend and starts serving; an unknown backend, an empty token or a listen
  // address that cannot be bound is an error naming the setting.
  static Result<std::unique_ptr<KraneServer>> Start(const KraneServerOptions& options);
  virtual ~KraneServer() = default;
  virtual std::string address() const = 0;  // "127.0.0.1:7070"
  virtual std::string_view backend_name() const = 0;
  // Stops accepting and lets in-flight calls finish; idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace slipway::krane
