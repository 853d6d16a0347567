// The operational endpoints every slipway server answers, independent of the HTTP engine
// underneath, so any server (Beast, Asio, a test double) mounts them with a few lines:
//
//   GET /healthz   200 "ok": the process is alive and serving HTTP. Asks nothing else, so a
//                  liveness probe never restarts a process because its database is slow.
//   GET /readyz    200 "ready", or 503 with the reason, from the server's readiness probe
//                  (ctrl: its databases answer; krane: dockerd or the cluster's API server
//                  answers; the gateway: the partition database answers; the store: its data
//                  directory is usable).
//   GET /metrics   the server's metrics in the Prometheus text format.
//
// HEAD is answered like GET without the body; any other method gets 405 naming GET.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace slipway::metrics {
class Registry;
}

namespace slipway {

struct OpsEndpoints {
  // Whose metrics /metrics shows; null: an empty page.
  const metrics::Registry* registry = nullptr;
  // Whether the server can do its work now; null: always ready. Called on every /readyz, so it
  // should be quick (a "SELECT 1", a ping) and bounded by its own timeout.
  std::function<Status()> ready;
};

struct OpsAnswer {
  int status = 200;
  std::string content_type;
  std::string body;  // for HEAD too: the server sends its length and not the bytes
  std::string allow;  // the Allow field of a 405
};

// True for /healthz, /readyz and /metrics (path without the query).
bool IsOpsPath(std::string_view path);

// The answer for method and path; nullopt when the path is not an operational endpoint (the
// server serves it as usual).
std::optional<OpsAnswer> AnswerOpsRequest(std::string_view method, std::string_view path,
                                          const OpsEndpoints& endpoints);

}  // namespace slipway
