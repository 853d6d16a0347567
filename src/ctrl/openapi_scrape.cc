#include "ctrl/openapi_scrape.h"

#include <fmt/format.h>

#include "net/http_client.h"

namespace slipway::ctrl {
namespace {

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Static servers often label YAML application/octet-stream or text/plain; the path says more.
std::string ContentTypeFor(const std::string& path, const std::string& served) {
  std::string base = served.substr(0, served.find(';'));
  if (!base.empty() && base != "application/octet-stream" && base != "text/plain") return served;
  if (EndsWith(path, ".json")) return "application/json";
  if (EndsWith(path, ".yaml") || EndsWith(path, ".yml")) return "application/yaml";
  return served.empty() ? "application/octet-stream" : served;
}

}  // namespace

OpenApiScrape ScrapeOpenApi(const std::string& address, const OpenApiScrapeOptions& options) {
  OpenApiScrape out;
  net::HttpClient http;
  std::vector<std::string> misses;
  for (const std::string& path : options.paths) {
    net::ClientRequest req;
    req.url = "http://" + address + path;
    req.timeout = options.timeout;
    req.connect_timeout = options.timeout;
    req.max_response_bytes = options.max_bytes;
    req.max_attempts = 1;
    auto resp = http.Do(req);
    if (!resp.ok()) {
      misses.push_back(fmt::format("{}: {}", path, resp.status().message()));
      continue;
    }
    if (resp->status != 200) {
      misses.push_back(fmt::format("{}: HTTP {}", path, resp->status));
      continue;
    }
    if (resp->body.empty()) {
      misses.push_back(fmt::format("{}: empty body", path));
      continue;
    }
    out.spec = OpenApiSpec{path, ContentTypeFor(path, resp->headers.GetOr("content-type", "")),
                           std::move(resp->body)};
    out.note =
        fmt::format("found {} ({} bytes, {})", path, out.spec->text.size(), out.spec->content_type);
    return out;
  }
  std::string joined;
  for (const auto& m : misses) joined += (joined.empty() ? "" : "; ") + m;
  out.note = fmt::format("no OpenAPI spec at {}: {}", address, joined);
  return out;
}

}  // namespace slipway::ctrl
