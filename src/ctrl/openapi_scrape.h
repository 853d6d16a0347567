// Fetching a deployed app's OpenAPI document, the way the deploy workflow's openapi step does:
// GET /openapi.yaml, then /openapi.json, from one ready instance, each bounded in time and size.
//
// Promise: never fails. An app without a spec, one that answers an error or too slowly, or a
// document over the size limit gives no spec and a note saying why, because a spec is optional
// and its absence must not fail a deployment.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace slipway::ctrl {

struct OpenApiSpec {
  std::string path;          // "/openapi.yaml"
  std::string content_type;  // as served, or inferred from the path when the app sent none
  std::string text;
};

struct OpenApiScrapeOptions {
  std::vector<std::string> paths = {"/openapi.yaml", "/openapi.json"};
  std::chrono::milliseconds timeout{2000};  // per request
  uint64_t max_bytes = 1024 * 1024;
};

struct OpenApiScrape {
  std::optional<OpenApiSpec> spec;
  std::string note;  // what happened, for the step's log: "found /openapi.yaml (1234 bytes)"
};

// address is "host:port" of a RUNNING instance.
OpenApiScrape ScrapeOpenApi(const std::string& address, const OpenApiScrapeOptions& options = {});

}  // namespace slipway::ctrl
