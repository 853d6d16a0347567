// ScrapeOpenApi against a real HTTP server on loopback: which path wins, content types, and
// every way an app can fail to serve a spec (missing, error, too large, too slow, not
// listening) giving no spec and a note instead of a failure.
#include "ctrl/openapi_scrape.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>

#include "net/http_server.h"
#include "support/test_support.h"

namespace slipway::ctrl {
namespace {

using namespace std::chrono_literals;

struct Page {
  int status = 200;
  std::string content_type;
  std::string body;
  std::chrono::milliseconds delay{0};
};

// Serves fixed pages by path; 404 for everything else.
class App {
 public:
  explicit App(std::map<std::string, Page> pages) : pages_(std::move(pages)) {
    auto server = net::HttpServer::Start(
        {}, [this](const net::HttpRequest& req, net::BodyReader&, net::ResponseWriter& w) {
          auto it = pages_.find(req.path);
          if (it == pages_.end()) {
            (void)w.Send(404, {}, "not found");
            return;
          }
          std::this_thread::sleep_for(it->second.delay);
          net::Headers h;
          if (!it->second.content_type.empty()) h.Set("Content-Type", it->second.content_type);
          (void)w.Send(it->second.status, h, it->second.body);
        });
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }
  std::string address() const { return server_->address(); }

 private:
  std::map<std::string, Page> pages_;
  std::unique_ptr<net::HttpServer> server_;
};

TEST(OpenApiScrapeTest, YamlIsPreferredAndOctetStreamIsNamedByThePath) {
  App app({{"/openapi.yaml", {200, "application/octet-stream", "openapi: 3.0.0\n"}},
           {"/openapi.json", {200, "application/json", "{}"}}});
  OpenApiScrape got = ScrapeOpenApi(app.address());
  ASSERT_TRUE(got.spec.has_value()) << got.note;
  EXPECT_EQ(got.spec->path, "/openapi.yaml");
  EXPECT_EQ(got.spec->text, "openapi: 3.0.0\n");
  EXPECT_EQ(got.spec->content_type, "application/yaml");
  EXPECT_NE(got.note.find("/openapi.yaml"), std::string::npos) << got.note;
}

TEST(OpenApiScrapeTest, JsonIsTriedWhenThereIsNoYamlAndKeepsItsContentType) {
  App app({{"/openapi.json", {200, "application/vnd.oai.openapi+json", R"({"openapi":"3.1.0"})"}}});
  OpenApiScrape got = ScrapeOpenApi(app.address());
  ASSERT_TRUE(got.spec.has_value()) << got.note;
  EXPECT_EQ(got.spec->path, "/openapi.json");
  EXPECT_EQ(got.spec->content_type, "application/vnd.oai.openapi+json");
}

TEST(OpenApiScrapeTest, MissingOrErrorPagesGiveNoSpecAndSayWhy) {
  App app({{"/openapi.json", {500, "text/plain", "oops"}}});
  OpenApiScrape got = ScrapeOpenApi(app.address());
  EXPECT_FALSE(got.spec.has_value());
  EXPECT_NE(got.note.find("/openapi.yaml: HTTP 404"), std::string::npos) << got.note;
  EXPECT_NE(got.note.find("/openapi.json: HTTP 500"), std::string::npos) << got.note;
}

TEST(OpenApiScrapeTest, ADocumentOverTheSizeLimitIsNotKept) {
  App app({{"/openapi.yaml", {200, "application/yaml", std::string(4096, 'x')}}});
  OpenApiScrapeOptions options;
  options.max_bytes = 1024;
  OpenApiScrape got = ScrapeOpenApi(app.address(), options);
  EXPECT_FALSE(got.spec.has_value());
  EXPECT_NE(got.note.find("larger than the limit"), std::string::npos) << got.note;
}

TEST(OpenApiScrapeTest, ASlowAppIsGivenUpOnAfterTheTimeout) {
  App app({{"/openapi.yaml", {200, "application/yaml", "openapi: 3.0.0\n", 3000ms}}});
  OpenApiScrapeOptions options;
  options.paths = {"/openapi.yaml"};
  options.timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  OpenApiScrape got = ScrapeOpenApi(app.address(), options);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2500ms);
  EXPECT_FALSE(got.spec.has_value());
  EXPECT_NE(got.note.find("/openapi.yaml"), std::string::npos) << got.note;
}

TEST(OpenApiScrapeTest, AnAddressWhereNothingListensGivesNoSpec) {
  const std::string address = "127.0.0.1:" + std::to_string(testing::FreePort());
  OpenApiScrape got = ScrapeOpenApi(address);
  EXPECT_FALSE(got.spec.has_value());
  EXPECT_NE(got.note.find(address), std::string::npos) << got.note;
}

}  // namespace
}  // namespace slipway::ctrl
