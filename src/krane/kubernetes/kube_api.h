// A small client for the Kubernetes API server's REST API: JSON requests over HTTPS (TLS
// verified against the connection's CA), bearer token or client certificate, and watch streams
// read line by line. It knows no resource types; it turns every failure into a sentence a
// person can act on (ErrorFor).
//
// Thread-safe: calls may come from many threads at once.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "krane/kubernetes/kube_config.h"

namespace slipway::net {
class HttpClient;
}

namespace slipway::krane::kubernetes {

// What a request was for, so an error can say which permission or object is at fault.
struct KubeAction {
  std::string verb;      // RBAC verb: "create", "get", "list", "watch", "patch", "delete"
  std::string group;     // API group: "" for core, "apps"
  std::string resource;  // "statefulsets", "pods", "pods/log"
  std::string ns;        // empty for cluster-scoped resources
  std::string name;      // the object, when there is one
};

struct KubeReply {
  int status = 0;
  nlohmann::json body;  // parsed when the answer is JSON, else null
  std::string text;     // the raw body
};

class KubeApi {
 public:
  explicit KubeApi(KubeConnection connection);
  ~KubeApi();
  KubeApi(const KubeApi&) = delete;
  KubeApi& operator=(const KubeApi&) = delete;

  const KubeConnection& connection() const { return connection_; }

  // path starts with "/api" or "/apis". A transport failure (refused, reset, timeout) is
  // Unavailable naming the server; any HTTP status is a reply for the caller to judge.
  Result<KubeReply> Call(const std::string& method, const std::string& path,
                         const nlohmann::json* body = nullptr,
                         const std::string& content_type = "application/json",
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // A watch: on_line gets each line of the stream (one JSON event each) until the server ends
  // it, on_line returns false, or the connection drops. Ok when the stream ended normally;
  // the reply status is returned through status_out (410 Gone means: list again).
  Status Stream(const std::string& path, const std::function<bool(std::string_view)>& on_line,
                int* status_out, std::string* error_body, std::function<bool()> cancelled,
                std::chrono::milliseconds timeout = std::chrono::minutes(6));

  // The error a non-2xx reply means, as a sentence: a 403 names the RBAC rule krane lacks, a
  // 422 the fields the API server refused, a 5xx or 429 is Unavailable (try again).
  Status ErrorFor(const KubeReply& reply, const KubeAction& action) const;
  Status ErrorFor(int status, const std::string& body, const KubeAction& action) const;

 private:
  std::string BearerToken() const;

  KubeConnection connection_;
  std::unique_ptr<net::HttpClient> http_;
};

// "/api/v1/namespaces/ns/pods" or "/apis/apps/v1/namespaces/ns/statefulsets".
std::string CollectionPath(const std::string& group, const std::string& resource,
                           const std::string& ns);

}  // namespace slipway::krane::kubernetes
