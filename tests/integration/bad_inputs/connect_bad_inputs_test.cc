// Bad input at ctrl's Connect API, over HTTP as any client sends it: malformed JSON and
// protobuf, wrong types, huge and deeply nested messages, unknown and missing fields, wrong
// methods, media types and headers. Each case asserts what docs/bad-inputs.md promises: a clear
// error (the Connect code a client expects, with a message that says what is wrong), nothing
// changed (the workspace still has no project and no deployment), and no crash (ctrl answers the
// next call).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "integration/ctrl/ctrl_harness.h"
#include "net/http_client.h"
#include "slipway/ctrl/v1/ctrl.pb.h"
#include "slipway/ctrl/v1/deployment.pb.h"

namespace slipway::ctrl::test {
namespace {

namespace pb = slipway::ctrl::v1;

constexpr std::string_view kCreate = "/slipway.ctrl.v1.DeploymentService/CreateDeployment";
constexpr std::string_view kJson = "application/json";
constexpr std::string_view kProto = "application/proto";

// The table below names only the fields a case changes; the rest keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct BadCall {
  std::string name;
  std::string procedure = std::string(kCreate);
  std::string method = "POST";
  std::string content_type = std::string(kJson);
  std::string body;
  net::Headers headers;
  bool chunked = false;  // send the body without a Content-Length
  int status = 400;
  std::string code = "invalid_argument";
  std::string message_has;  // a part of the message that says what is wrong
};

std::string Nested(size_t depth) {
  return std::string("{\"project\":\"app\",\"unknownField\":") + std::string(depth, '[') +
         std::string(depth, ']') + "}";
}

std::vector<BadCall> Cases() {
  std::string huge = "{\"project\":\"app\",\"branch\":\"" + std::string(5 << 20, 'b') + "\"}";
  return {
      {.name = "TruncatedJson", .body = R"({"project": "app", "image": )",
       .message_has = "not valid JSON"},
      {.name = "JsonArrayInsteadOfObject", .body = "[1, 2, 3]", .message_has = "not valid JSON"},
      {.name = "NotJsonAtAll", .body = "project=app&image=x", .message_has = "not valid JSON"},
      {.name = "JsonWithInvalidUtf8", .body = "{\"project\": \"a\xff\xfe\"}",
       .message_has = "JSON"},
      {.name = "NumberForAString", .body = R"({"project": 5, "image": "x"})",
       .message_has = "not valid JSON"},
      {.name = "StringForAnInteger",
       .body = R"({"project": "app", "image": "x", "resources": {"replicas": "many"}})",
       .message_has = "not valid JSON"},
      {.name = "IntegerOutOfRange",
       .body = R"({"project": "app", "image": "x", "resources": {"replicas": 99999999999}})",
       .message_has = "not valid JSON"},
      {.name = "ObjectForAString", .body = R"({"project": {"name": "app"}, "image": "x"})",
       .message_has = "not valid JSON"},
      {.name = "BothSourcesOfAOneof",
       .body = R"({"project": "app", "image": "x", "context": {"contextKey": "k"}})",
       .message_has = "oneof"},
      // 100,000 levels in an unknown field: skipped without recursing out of the stack, and the
      // rest of the request judged.
      {.name = "DeeplyNestedJson", .body = Nested(100000), .message_has = "source"},
      {.name = "MissingEveryField", .body = "{}", .message_has = "project"},
      {.name = "EmptyBody", .body = "", .message_has = "project"},
      {.name = "MissingSource", .body = R"({"project": "app"})", .message_has = "source"},
      {.name = "UnknownFieldsAreIgnoredAndTheRestIsJudged",
       .body = R"({"project": "app", "notAField": {"x": [1, 2]}, "alsoNot": 3})",
       .message_has = "source"},
      {.name = "InvalidProjectName", .body = R"({"project": "Bad Name!", "image": "x"})",
       .message_has = "project"},
      {.name = "ReplicasOutOfRange",
       .body = R"({"project": "app", "image": "x", "resources": {"replicas": 1000}})",
       .message_has = "replicas"},
      {.name = "NegativePort",
       .body = R"({"project": "app", "image": "x", "resources": {"port": -1}})",
       .message_has = "port"},
      {.name = "TruncatedProtobuf", .content_type = std::string(kProto),
       .body = std::string("\x0a\x20" "app", 5), .message_has = "not a valid binary"},
      {.name = "ProtobufWithInvalidUtf8", .content_type = std::string(kProto),
       .body = std::string("\x0a\x02\xff\xfe", 4), .message_has = "not a valid binary"},
      {.name = "ProtobufWithAWrongWireType", .content_type = std::string(kProto),
       .body = std::string("\x08\x01", 2), .message_has = "project"},
      {.name = "ProtobufGroupThatNeverEnds", .content_type = std::string(kProto),
       .body = std::string("\x0b\x0b\x0b\x0b", 4), .message_has = "not a valid binary"},
      {.name = "HugeMessage", .body = huge, .status = 429, .code = "resource_exhausted",
       .message_has = "larger than"},
      {.name = "HugeMessageWithoutLength", .body = huge, .chunked = true, .status = 429,
       .code = "resource_exhausted", .message_has = "larger than"},
      {.name = "WrongContentType", .content_type = "text/plain", .body = "{}", .status = 415,
       .message_has = "Content-Type"},
      {.name = "GetInsteadOfPost", .method = "GET", .status = 405, .code = "unimplemented",
       .message_has = "POST"},
      {.name = "UnknownProcedure", .procedure = "/slipway.ctrl.v1.DeploymentService/Nope",
       .body = "{}", .status = 404, .code = "unimplemented", .message_has = "no procedure"},
      {.name = "BadTimeoutHeader", .body = R"({"project": "app", "image": "x"})",
       .headers = {{"Connect-Timeout-Ms", "soon"}}, .message_has = "Connect-Timeout-Ms"},
      {.name = "UnsupportedProtocolVersion", .body = R"({"project": "app", "image": "x"})",
       .headers = {{"Connect-Protocol-Version", "2"}}, .message_has = "Connect-Protocol-Version"},
      {.name = "CompressedBody", .body = R"({"project": "app", "image": "x"})",
       .headers = {{"Content-Encoding", "gzip"}}, .status = 501, .code = "unimplemented",
       .message_has = "Content-Encoding"},
  };
}

class ConnectBadInputTest : public ::testing::TestWithParam<BadCall> {
 protected:
  static void SetUpTestSuite() { ctrl_ = new CtrlHarness(CtrlHarness::Settings{}); }
  static void TearDownTestSuite() { delete ctrl_; }

  // Nothing changed: no deployment (and so no project) exists in the caller's workspace.
  static void ExpectNothingChanged() {
    auto listed = ctrl_->Client(ctrl_->token_a())
                      .Call<pb::ListDeploymentsResponse>(
                          "/slipway.ctrl.v1.DeploymentService/ListDeployments",
                          pb::ListDeploymentsRequest());
    ASSERT_TRUE(listed.ok()) << listed.status().ToString();
    EXPECT_EQ(listed->deployments_size(), 0);
  }

  static CtrlHarness* ctrl_;
};

CtrlHarness* ConnectBadInputTest::ctrl_ = nullptr;

TEST_P(ConnectBadInputTest, IsRefusedChangesNothingAndCtrlGoesOn) {
  const BadCall& c = GetParam();
  net::HttpClient http;
  net::ClientRequest request;
  request.method = c.method;
  request.url = ctrl_->endpoint() + c.procedure;
  request.headers = c.headers;
  request.headers.Set("Authorization", "Bearer " + ctrl_->token_a());
  if (c.method == "POST") request.headers.Set("Content-Type", c.content_type);
  request.max_attempts = 1;
  if (c.chunked) {
    size_t sent = 0;
    request.body_source = [&](char* buf, size_t n) -> Result<size_t> {
      size_t take = std::min(n, c.body.size() - sent);
      std::memcpy(buf, c.body.data() + sent, take);
      sent += take;
      return take;
    };
  } else {
    request.body = c.body;
  }
  auto response = http.Do(request);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->status, c.status) << response->body.substr(0, 500);
  auto error = nlohmann::json::parse(response->body, nullptr, false);
  ASSERT_TRUE(error.is_object()) << response->body.substr(0, 500);
  EXPECT_EQ(error.value("code", ""), c.code) << response->body.substr(0, 500);
  std::string message = error.value("message", "");
  EXPECT_NE(message.find(c.message_has), std::string::npos) << message;
  EXPECT_LT(message.size(), 2000u) << "the message should say what is wrong, not echo the input";

  ExpectNothingChanged();
  auto alive = ctrl_->Client("").Call<pb::LivenessResponse>("/slipway.ctrl.v1.CtrlService/Liveness",
                                                             pb::LivenessRequest());
  EXPECT_TRUE(alive.ok()) << alive.status().ToString();
}

INSTANTIATE_TEST_SUITE_P(Calls, ConnectBadInputTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace slipway::ctrl::test
