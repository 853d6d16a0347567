// slipway's Connect server checked by clients written by others: curl with JSON, and connect-es
// (npm @connectrpc/connect-node) with both the binary and the JSON format.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <mutex>
#include <set>

#include "base/clock.h"
#include "net/connect.h"
#include "net/health_service.h"
#include "net/http_server.h"
#include "support/test_support.h"

namespace slipway::net {
namespace {

namespace fs = std::filesystem;
using slipway::testing::RunCommand;
using slipway::testing::SourceDir;
using slipway::testing::TempDir;

std::string Quote(const std::string& s) { return "'" + s + "'"; }

class ConnectPeersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterHealthService(router_, SystemClock(), SystemClock().Now() - std::chrono::seconds(5));
    // Lets the peers see a Connect error: a call carrying the token "wrong" is refused.
    router_.SetAuthorizer([](CallContext& ctx) {
      if (ctx.bearer_token() == "wrong") {
        return Status::PermissionDenied(
            "the token is not valid here; use the token `slipway dev` "
            "printed.");
      }
      return Status::Ok();
    });
    // Records each request's Content-Type, to prove both formats really crossed the wire.
    auto server = HttpServer::Start(
        {}, [this](const HttpRequest& request, BodyReader& body, ResponseWriter& response) {
          {
            std::lock_guard<std::mutex> lock(mu_);
            content_types_.insert(request.headers.GetOr("Content-Type", ""));
          }
          router_.Serve(request, body, response);
        });
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    base_url_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }

  ConnectRouter router_;
  std::mutex mu_;
  std::set<std::string> content_types_;
  std::unique_ptr<HttpServer> server_;
  std::string base_url_;
};

TEST_F(ConnectPeersTest, CurlWithJsonGetsServing) {
  auto res =
      RunCommand("curl -s -w '\\n%{http_code}' -H 'Content-Type: application/json' -d '{}' " +
                 base_url_ + "/slipway.health.v1.HealthService/Check");
  ASSERT_EQ(res.exit_code, 0) << res.output;
  auto newline = res.output.rfind('\n');
  ASSERT_NE(newline, std::string::npos) << res.output;
  EXPECT_EQ(res.output.substr(newline + 1), "200") << res.output;
  auto body = nlohmann::json::parse(res.output.substr(0, newline));
  EXPECT_EQ(body["status"], "SERVING_STATUS_SERVING");
  EXPECT_GE(std::stoll(body["uptimeSeconds"].get<std::string>()), 5);

  auto missing = RunCommand(
      "curl -s -w '\\n%{http_code}' -H 'Content-Type: application/json' "
      "-d '{}' " +
      base_url_ + "/slipway.health.v1.HealthService/Nope");
  ASSERT_EQ(missing.exit_code, 0) << missing.output;
  newline = missing.output.rfind('\n');
  EXPECT_EQ(missing.output.substr(newline + 1), "404") << missing.output;
  EXPECT_EQ(nlohmann::json::parse(missing.output.substr(0, newline))["code"], "unimplemented");
}

TEST_F(ConnectPeersTest, ConnectEsClientInBinaryAndJson) {
  fs::path peers = SourceDir() / "tests" / "peers";
  fs::path plugin = peers / "node_modules" / ".bin" / "protoc-gen-es";
  ASSERT_TRUE(fs::exists(plugin)) << plugin << " is missing; run `npm ci` in " << peers
                                  << " to install the test peers.";

  // Generate the connect-es code for health.proto at test time, so it always matches the proto.
  // The generated module imports @bufbuild/protobuf, which Node resolves from the module's own
  // directory upwards: a node_modules link next to it points at the peers' packages.
  TempDir gen;
  fs::create_directory_symlink(peers / "node_modules", gen.path() / "node_modules");
  auto protoc = RunCommand("protoc --plugin=protoc-gen-es=" + Quote(plugin.string()) +
                           " --es_out=" + Quote(gen.str()) + " --es_opt=target=js -I " +
                           Quote((SourceDir() / "proto").string()) + " " +
                           Quote((SourceDir() / "proto/slipway/health/v1/health.proto").string()));
  ASSERT_EQ(protoc.exit_code, 0) << protoc.output;
  fs::path generated = gen.path() / "slipway/health/v1/health_pb.js";
  ASSERT_TRUE(fs::exists(generated)) << protoc.output;

  auto node = RunCommand("node " + Quote((peers / "connect_health_client.mjs").string()) + " " +
                         base_url_ + " " + Quote(generated.string()));
  ASSERT_EQ(node.exit_code, 0) << node.output;

  for (std::string mode : {"binary=true", "binary=false"}) {
    // The success line: "<mode> ok {json}".
    auto ok = node.output.find(mode + " ok ");
    ASSERT_NE(ok, std::string::npos) << node.output;
    auto start = ok + mode.size() + 4;
    auto json =
        nlohmann::json::parse(node.output.substr(start, node.output.find('\n', start) - start));
    EXPECT_EQ(json["status"], "SERVING_STATUS_SERVING") << mode;
    EXPECT_GE(std::stoll(json["uptimeSeconds"].get<std::string>()), 5) << mode;
    // The refused call: connect-es decoded our error body into its own code and message.
    EXPECT_NE(node.output.find(mode + " error code=PermissionDenied message=the token is not "
                                      "valid here"),
              std::string::npos)
        << node.output;
  }
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(content_types_, (std::set<std::string>{"application/json", "application/proto"}));
}

}  // namespace
}  // namespace slipway::net
