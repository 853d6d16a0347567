// dockerd's Engine API straight from a test, to check what krane or a builder did behind
// slipway's own APIs. Header-only: it needs net and nlohmann_json, which the support library
// does not link.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

#include "base/status.h"
#include "net/http_client.h"

namespace slipway::testing {

// One call on /var/run/docker.sock. 404 is an answer (a null or error body), other statuses
// of 300 and above are Internal errors naming the call.
// body, when given, is sent as JSON.
inline Result<nlohmann::json> DockerApi(const std::string& method, const std::string& path,
                                        const std::string& body = "") {
  static net::HttpClient* http = new net::HttpClient();
  net::ClientRequest req;
  req.method = method;
  if (!body.empty()) {
    req.body = body;
    req.headers.Set("Content-Type", "application/json");
  }
  req.unix_socket = "/var/run/docker.sock";
  req.url = "http://docker/v1.41" + path;
  req.timeout = std::chrono::seconds(30);
  auto resp = http->Do(req);
  if (!resp.ok()) return resp.status();
  if (resp->status >= 300 && resp->status != 404) {
    return Status::Internal(method + " " + path + ": HTTP " + std::to_string(resp->status) + " " +
                            resp->body);
  }
  if (resp->body.empty()) return nlohmann::json();
  return nlohmann::json::parse(resp->body, nullptr, false);
}

}  // namespace slipway::testing
