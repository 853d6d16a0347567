#include "net/connect.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/wrappers.pb.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <thread>

#include "base/clock.h"
#include "base/metrics.h"
#include "net/health_service.h"
#include "net/http_server.h"
#include "slipway/health/v1/health.pb.h"

namespace slipway::net {
namespace {

using google::protobuf::StringValue;
using health::v1::CheckRequest;
using health::v1::CheckResponse;
using namespace std::chrono_literals;

constexpr Code kAllErrorCodes[] = {
    Code::kCanceled,         Code::kUnknown,           Code::kInvalidArgument,
    Code::kDeadlineExceeded, Code::kNotFound,          Code::kAlreadyExists,
    Code::kPermissionDenied, Code::kResourceExhausted, Code::kFailedPrecondition,
    Code::kAborted,          Code::kOutOfRange,        Code::kUnimplemented,
    Code::kInternal,         Code::kUnavailable,       Code::kDataLoss,
    Code::kUnauthenticated,
};

TEST(ConnectCodesTest, ErrorCodeToHttpStatusFollowsTheSpecTable) {
  const std::map<std::string, int> spec = {
      {"canceled", 499},
      {"unknown", 500},
      {"invalid_argument", 400},
      {"deadline_exceeded", 504},
      {"not_found", 404},
      {"already_exists", 409},
      {"permission_denied", 403},
      {"resource_exhausted", 429},
      {"failed_precondition", 400},
      {"aborted", 409},
      {"out_of_range", 400},
      {"unimplemented", 501},
      {"internal", 500},
      {"unavailable", 503},
      {"data_loss", 500},
      {"unauthenticated", 401},
  };
  for (Code code : kAllErrorCodes) {
    auto it = spec.find(std::string(CodeName(code)));
    ASSERT_NE(it, spec.end()) << CodeName(code);
    EXPECT_EQ(HttpStatusForCode(code), it->second) << CodeName(code);
  }
}

TEST(ConnectCodesTest, HttpStatusWithoutErrorBodyMapsToCodeLikeTheSpec) {
  EXPECT_EQ(CodeForHttpStatus(400), Code::kInternal);
  EXPECT_EQ(CodeForHttpStatus(401), Code::kUnauthenticated);
  EXPECT_EQ(CodeForHttpStatus(403), Code::kPermissionDenied);
  EXPECT_EQ(CodeForHttpStatus(404), Code::kUnimplemented);
  EXPECT_EQ(CodeForHttpStatus(429), Code::kUnavailable);
  EXPECT_EQ(CodeForHttpStatus(502), Code::kUnavailable);
  EXPECT_EQ(CodeForHttpStatus(503), Code::kUnavailable);
  EXPECT_EQ(CodeForHttpStatus(504), Code::kUnavailable);
  EXPECT_EQ(CodeForHttpStatus(500), Code::kUnknown);
  EXPECT_EQ(CodeForHttpStatus(418), Code::kUnknown);
  EXPECT_EQ(CodeForHttpStatus(409), Code::kUnknown);
}

TEST(ConnectCodesTest, HealthProcedureMatchesTheProto) {
  const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
      "slipway.health.v1.HealthService");
  ASSERT_NE(service, nullptr);
  const auto* check = service->FindMethodByName("Check");
  ASSERT_NE(check, nullptr);
  EXPECT_EQ(HealthCheckProcedure(), "/" + service->full_name() + "/" + check->name());
  EXPECT_EQ(check->input_type(), CheckRequest::descriptor());
  EXPECT_EQ(check->output_type(), CheckResponse::descriptor());
}

// A real HttpServer with a router carrying Health and a few test procedures.
class ConnectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ConnectRouter::Options options;
    options.max_request_bytes = 4096;
    router_ = std::make_unique<ConnectRouter>(options);
    RegisterHealthService(*router_, clock_, start_);
    router_->Unary<StringValue, StringValue>(
        "/test.v1.Echo/Echo", [](CallContext&, const StringValue& req, StringValue* resp) {
          resp->set_value("echo:" + req.value());
          return Status::Ok();
        });
    // Fails with the code named in the request, so every code can cross the wire.
    router_->Unary<StringValue, StringValue>(
        "/test.v1.Echo/Fail", [](CallContext&, const StringValue& req, StringValue*) {
          return Status(CodeFromName(req.value()),
                        "failed with " + req.value() + " \"on purpose\"");
        });
    router_->Unary<StringValue, StringValue>(
        "/test.v1.Echo/WhoAmI", [](CallContext& ctx, const StringValue&, StringValue* resp) {
          resp->set_value(ctx.bearer_token() + "|" +
                          ctx.request_headers().GetOr("Authorization", "") + "|" +
                          ctx.request_headers().GetOr("X-Request-Id", ""));
          ctx.response_headers().Add("X-Handled-By", "whoami");
          return Status::Ok();
        });
    router_->Unary<StringValue, StringValue>(
        "/test.v1.Echo/Deadline", [](CallContext& ctx, const StringValue&, StringValue* resp) {
          if (!ctx.deadline()) {
            resp->set_value("none");
          } else {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                *ctx.deadline() - std::chrono::steady_clock::now());
            resp->set_value(std::to_string(left.count()));
          }
          return Status::Ok();
        });
    router_->SetMetrics(registry_);
    HttpServer::Options server_options;
    auto server = HttpServer::Start(server_options, router_->AsHandler());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    base_url_ = "http://" + server_->address();
  }

  ConnectClient Client(bool binary, std::string token = "") {
    ConnectClient::Options options;
    options.base_url = base_url_;
    options.binary = binary;
    options.bearer_token = std::move(token);
    return ConnectClient(options);
  }

  // A raw POST, to see exactly what goes over the wire.
  ClientResponse Post(const std::string& path, const std::string& content_type,
                      const std::string& body, Headers extra = {}) {
    ClientRequest req;
    req.method = "POST";
    req.url = base_url_ + path;
    req.headers = std::move(extra);
    if (!content_type.empty()) req.headers.Set("Content-Type", content_type);
    req.body = body;
    auto res = http_.Do(req);
    EXPECT_TRUE(res.ok()) << res.status().ToString();
    return res.ok() ? *res : ClientResponse{};
  }

  ManualClock clock_{std::chrono::system_clock::time_point(std::chrono::hours(1000))};
  std::chrono::system_clock::time_point start_ = clock_.Now();
  metrics::Registry registry_;  // declared first: the router counts into it
  std::unique_ptr<ConnectRouter> router_;
  std::unique_ptr<HttpServer> server_;
  std::string base_url_;
  HttpClient http_;
};

TEST_F(ConnectTest, HealthCheckRoundTripsAsJsonAndAsProto) {
  clock_.Advance(42s);
  for (bool binary : {false, true}) {
    auto res = Client(binary).Call<CheckResponse>(HealthCheckProcedure(), CheckRequest());
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    EXPECT_EQ(res->status(), CheckResponse::SERVING_STATUS_SERVING) << binary;
    EXPECT_EQ(res->uptime_seconds(), 42) << binary;
  }
}

TEST_F(ConnectTest, JsonWireFormatIsProtoJson) {
  clock_.Advance(7s);
  auto res = Post(HealthCheckProcedure(), "application/json", R"({"service":"ctrl"})");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.headers.GetOr("Content-Type", ""), "application/json");
  auto json = nlohmann::json::parse(res.body);
  EXPECT_EQ(json["status"], "SERVING_STATUS_SERVING");
  EXPECT_EQ(json["uptimeSeconds"], "7");  // int64 is a JSON string in the proto3 mapping
}

TEST_F(ConnectTest, ProtoWireFormatIsBinaryProtobuf) {
  CheckRequest req;
  req.set_service("krane");
  auto res = Post(HealthCheckProcedure(), "application/proto", req.SerializeAsString(),
                  Headers{{"Connect-Protocol-Version", "1"}});
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.headers.GetOr("Content-Type", ""), "application/proto");
  CheckResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(res.body));
  EXPECT_EQ(parsed.status(), CheckResponse::SERVING_STATUS_SERVING);
}

TEST_F(ConnectTest, StringsSurviveBothCodecs) {
  StringValue req;
  req.set_value("h\xC3\xA9llo \"quoted\" \\ \n line");
  for (bool binary : {false, true}) {
    auto res = Client(binary).Call<StringValue>("/test.v1.Echo/Echo", req);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    EXPECT_EQ(res->value(), "echo:" + req.value());
  }
}

TEST_F(ConnectTest, EmptyJsonBodyIsTheEmptyMessage) {
  auto res = Post("/test.v1.Echo/Echo", "application/json", "");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "\"echo:\"");
}

TEST_F(ConnectTest, EveryCallIsCountedByProcedureAndCode) {
  ASSERT_TRUE(Client(false).Call<StringValue>("/test.v1.Echo/Echo", StringValue()).ok());
  ASSERT_TRUE(Client(true).Call<StringValue>("/test.v1.Echo/Echo", StringValue()).ok());
  StringValue not_found;
  not_found.set_value("not_found");
  EXPECT_EQ(Client(false).CallUnary("/test.v1.Echo/Fail", not_found, nullptr).code(),
            Code::kNotFound);
  EXPECT_FALSE(Client(false).CallUnary("/test.v1.Nope/Nope", StringValue(), nullptr).ok());
  EXPECT_FALSE(Client(false).CallUnary("/test.v1.Other/Path", StringValue(), nullptr).ok());

  // The same definition again returns the router's families. A call is counted once its
  // answer is sent, so the client may see the answer a moment before the count moves.
  auto& requests = registry_.AddCounter("slipway_rpc_requests_total",
                                        "Connect calls answered, by procedure and the code "
                                        "answered with",
                                        {"procedure", "code"});
  for (int i = 0; i < 500 && requests.With({"unknown", "unimplemented"}).value() < 2; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(requests.With({"/test.v1.Echo/Echo", "ok"}).value(), 2);
  EXPECT_EQ(requests.With({"/test.v1.Echo/Fail", "not_found"}).value(), 1);
  EXPECT_EQ(requests.With({"unknown", "unimplemented"}).value(), 2);
  EXPECT_EQ(requests.With({"/test.v1.Echo/Echo", "not_found"}).value(), 0);
  std::string page = registry_.Exposition();
  EXPECT_NE(page.find("slipway_rpc_duration_seconds_count{procedure=\"/test.v1.Echo/Echo\"} 2\n"),
            std::string::npos)
      << page;
  EXPECT_EQ(page.find("/test.v1.Nope/Nope"), std::string::npos) << "unregistered paths are not labels";
}

TEST_F(ConnectTest, UnknownMethodIs404Unimplemented) {
  auto raw = Post("/test.v1.Echo/Nope", "application/json", "{}");
  EXPECT_EQ(raw.status, 404);
  EXPECT_EQ(nlohmann::json::parse(raw.body)["code"], "unimplemented");

  auto st = Client(false).CallUnary("/test.v1.Echo/Nope", StringValue(), nullptr);
  EXPECT_EQ(st.code(), Code::kUnimplemented) << st.ToString();
  EXPECT_NE(st.message().find("/test.v1.Echo/Nope"), std::string::npos) << st.message();
}

TEST_F(ConnectTest, WrongContentTypeIs415) {
  auto raw = Post("/test.v1.Echo/Echo", "text/plain", "hi");
  EXPECT_EQ(raw.status, 415);
  EXPECT_NE(raw.headers.GetOr("Accept-Post", "").find("application/proto"), std::string::npos);
  auto missing = Post("/test.v1.Echo/Echo", "", "hi");
  EXPECT_EQ(missing.status, 415);
}

// Found by fuzz/connect_fuzz.cc: an error message quoting what the client sent (here its
// Content-Type) carried bytes that are not UTF-8 into the JSON error body, which strict JSON
// parsers refuse (nlohmann's throws), so the client lost the error.
TEST_F(ConnectTest, ErrorBodiesStayValidJsonWhenTheyQuoteBytesThatAreNotUtf8) {
  auto raw = Post("/test.v1.Echo/Echo", "text/pl\xff\xfe" "ain", "hi");
  EXPECT_EQ(raw.status, 415);
  nlohmann::json body;
  ASSERT_NO_THROW(body = nlohmann::json::parse(raw.body)) << raw.body;
  EXPECT_EQ(body["code"], "invalid_argument");
  // Each stray byte is shown as U+FFFD, the rest of the quote as sent.
  EXPECT_NE(body["message"].get<std::string>().find("text/pl\xef\xbf\xbd\xef\xbf\xbd" "ain"),
            std::string::npos)
      << raw.body;
}

TEST(Utf8Test, ValidTextIsKeptAndEveryMalformedSequenceBecomesOneReplacement) {
  EXPECT_EQ(net::ToValidUtf8("plain caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\xa2"),
            "plain caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\xa2");
  EXPECT_EQ(net::ToValidUtf8("a\xff" "b"), "a\xef\xbf\xbd" "b");
  EXPECT_EQ(net::ToValidUtf8("\xe2\x82"), "\xef\xbf\xbd\xef\xbf\xbd");  // truncated
  EXPECT_EQ(net::ToValidUtf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");  // overlong '/'
  EXPECT_EQ(net::ToValidUtf8("\xed\xa0\x80"),
            "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a UTF-16 surrogate
  EXPECT_EQ(net::ToValidUtf8(std::string("n\0ul", 4)), std::string("n\0ul", 4));
}

TEST_F(ConnectTest, ContentTypeParametersAreAccepted) {
  auto raw = Post("/test.v1.Echo/Echo", "Application/JSON; charset=utf-8", "\"x\"");
  EXPECT_EQ(raw.status, 200);
  EXPECT_EQ(raw.body, "\"echo:x\"");
}

TEST_F(ConnectTest, MalformedBodiesAreInvalidArgument) {
  auto json = Post("/test.v1.Echo/Echo", "application/json", "{not json");
  EXPECT_EQ(json.status, 400);
  auto body = nlohmann::json::parse(json.body);
  EXPECT_EQ(body["code"], "invalid_argument");
  EXPECT_FALSE(body["message"].get<std::string>().empty());

  auto proto = Post(HealthCheckProcedure(), "application/proto", std::string("\xff\xff\xff", 3));
  EXPECT_EQ(proto.status, 400);
  EXPECT_EQ(nlohmann::json::parse(proto.body)["code"], "invalid_argument");
}

TEST_F(ConnectTest, EveryHandlerErrorCrossesTheWireWithCodeAndMessage) {
  for (bool binary : {false, true}) {
    for (Code code : kAllErrorCodes) {
      StringValue req;
      req.set_value(std::string(CodeName(code)));
      Status st = Client(binary).CallUnary("/test.v1.Echo/Fail", req, nullptr);
      EXPECT_EQ(st.code(), code) << CodeName(code);
      EXPECT_EQ(st.message(), "failed with " + req.value() + " \"on purpose\"");
    }
  }
  // And on the wire: the spec's HTTP status and a JSON error body.
  auto raw = Post("/test.v1.Echo/Fail", "application/json", "\"not_found\"");
  EXPECT_EQ(raw.status, 404);
  EXPECT_EQ(raw.headers.GetOr("Content-Type", ""), "application/json");
  auto body = nlohmann::json::parse(raw.body);
  EXPECT_EQ(body["code"], "not_found");
  EXPECT_EQ(body["message"], "failed with not_found \"on purpose\"");
}

TEST_F(ConnectTest, AuthorizationAndOtherHeadersReachTheHandler) {
  ConnectClient::Options options;
  options.base_url = base_url_;
  options.bearer_token = "tok-123";
  options.headers.Add("X-Request-Id", "req-9");
  ConnectClient client(options);
  auto res = client.Call<StringValue>("/test.v1.Echo/WhoAmI", StringValue());
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->value(), "tok-123|Bearer tok-123|req-9");

  auto raw = Post("/test.v1.Echo/WhoAmI", "application/json", "{}");
  EXPECT_EQ(raw.headers.GetOr("X-Handled-By", ""), "whoami");
}

TEST_F(ConnectTest, AuthorizerRefusesBeforeTheHandlerRuns) {
  router_->SetAuthorizer([](CallContext& ctx) {
    if (ctx.procedure() == HealthCheckProcedure()) return Status::Ok();
    if (ctx.bearer_token() != "good") {
      return Status::Unauthenticated("a valid token is required; run `slipway login`.");
    }
    return Status::Ok();
  });
  Status refused = Client(false, "bad").CallUnary("/test.v1.Echo/Echo", StringValue(), nullptr);
  EXPECT_EQ(refused.code(), Code::kUnauthenticated) << refused.ToString();
  EXPECT_EQ(Post("/test.v1.Echo/Echo", "application/json", "{}").status, 401);
  auto ok = Client(false, "good").Call<StringValue>("/test.v1.Echo/Echo", StringValue());
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
  auto health = Client(false).Call<CheckResponse>(HealthCheckProcedure(), CheckRequest());
  EXPECT_TRUE(health.ok()) << health.status().ToString();
}

TEST_F(ConnectTest, ConnectTimeoutMsBecomesTheHandlersDeadline) {
  ConnectClient::Options options;
  options.base_url = base_url_;
  options.timeout = 5000ms;
  auto res = ConnectClient(options).Call<StringValue>("/test.v1.Echo/Deadline", StringValue());
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  int left = std::stoi(res->value());
  EXPECT_GT(left, 3000);
  EXPECT_LE(left, 5000);

  auto none = Post("/test.v1.Echo/Deadline", "application/json", "{}");
  EXPECT_EQ(none.body, "\"none\"");
  auto bad = Post("/test.v1.Echo/Deadline", "application/json", "{}",
                  Headers{{"Connect-Timeout-Ms", "soon"}});
  EXPECT_EQ(bad.status, 400);
  auto expired = Post("/test.v1.Echo/Deadline", "application/json", "{}",
                      Headers{{"Connect-Timeout-Ms", "0"}});
  EXPECT_EQ(expired.status, 504);
  EXPECT_EQ(nlohmann::json::parse(expired.body)["code"], "deadline_exceeded");
}

TEST_F(ConnectTest, UnsupportedProtocolVersionAndMethodAreRefused) {
  auto version = Post("/test.v1.Echo/Echo", "application/json", "{}",
                      Headers{{"Connect-Protocol-Version", "2"}});
  EXPECT_EQ(version.status, 400);
  EXPECT_EQ(nlohmann::json::parse(version.body)["code"], "invalid_argument");

  ClientRequest get;
  get.url = base_url_ + "/test.v1.Echo/Echo";
  auto res = http_.Do(get);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 405);
  EXPECT_EQ(res->headers.GetOr("Allow", ""), "POST");
}

TEST_F(ConnectTest, CompressedRequestsAreUnimplemented) {
  auto res =
      Post("/test.v1.Echo/Echo", "application/json", "{}", Headers{{"Content-Encoding", "gzip"}});
  EXPECT_EQ(res.status, 501);
  EXPECT_EQ(nlohmann::json::parse(res.body)["code"], "unimplemented");
}

TEST_F(ConnectTest, OversizedRequestIsResourceExhausted) {
  StringValue big;
  big.set_value(std::string(10'000, 'z'));
  for (bool binary : {false, true}) {
    Status st = Client(binary).CallUnary("/test.v1.Echo/Echo", big, nullptr);
    EXPECT_EQ(st.code(), Code::kResourceExhausted) << st.ToString();
  }
}

TEST(ConnectClientTest, HttpErrorWithoutConnectBodyMapsFromHttpStatus) {
  std::atomic<int> status_to_send = 503;
  auto server = HttpServer::Start({}, [&](const HttpRequest&, BodyReader& body, ResponseWriter& w) {
    (void)body.ReadAll(1 << 20);
    (void)w.Send(status_to_send, Headers{{"Content-Type", "text/html"}}, "<h1>proxy says no</h1>");
  });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ConnectClient::Options options;
  options.base_url = "http://" + (*server)->address() + "/";
  ConnectClient client(options);
  const std::pair<int, Code> cases[] = {
      {503, Code::kUnavailable},   {502, Code::kUnavailable}, {401, Code::kUnauthenticated},
      {404, Code::kUnimplemented}, {400, Code::kInternal},    {500, Code::kUnknown},
  };
  for (auto [http, code] : cases) {
    status_to_send = http;
    Status st = client.CallUnary("/a.B/C", StringValue(), nullptr);
    EXPECT_EQ(st.code(), code) << http << " " << st.ToString();
    EXPECT_NE(st.message().find("proxy says no"), std::string::npos) << st.message();
  }
}

TEST(ConnectClientTest, UnreachableServerIsUnavailable) {
  ConnectClient::Options options;
  options.base_url = "http://127.0.0.1:1";
  Status st = ConnectClient(options).CallUnary("/a.B/C", StringValue(), nullptr);
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
}

}  // namespace
}  // namespace slipway::net
