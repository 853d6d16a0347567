#include "base/ops_endpoints.h"

#include "base/metrics.h"

namespace slipway {

bool IsOpsPath(std::string_view path) {
  return path == "/healthz" || path == "/readyz" || path == "/metrics";
}

std::optional<OpsAnswer> AnswerOpsRequest(std::string_view method, std::string_view path,
                                          const OpsEndpoints& endpoints) {
  if (!IsOpsPath(path)) return std::nullopt;
  OpsAnswer answer;
  answer.content_type = "text/plain; charset=utf-8";
  bool head = method == "HEAD";
  if (method != "GET" && !head) {
    answer.status = 405;
    answer.allow = "GET, HEAD";
    answer.body = std::string(path) + " answers GET (and HEAD) only; send a GET.\n";
    return answer;
  }
  if (path == "/healthz") {
    answer.body = "ok\n";
  } else if (path == "/readyz") {
    Status ready = endpoints.ready ? endpoints.ready() : Status::Ok();
    if (ready.ok()) {
      answer.body = "ready\n";
    } else {
      answer.status = 503;
      answer.body = "not ready: " + ready.message() + "\n";
    }
  } else {
    answer.content_type = std::string(metrics::kExpositionContentType);
    if (endpoints.registry != nullptr) answer.body = endpoints.registry->Exposition();
  }
  return answer;
}

}  // namespace slipway
