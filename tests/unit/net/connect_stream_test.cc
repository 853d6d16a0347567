// Connect server streaming: the envelope codec, the end-of-stream message, and ConnectRouter's
// streams read by ConnectClient and by a raw HTTP client over a real HttpServer.
#include <google/protobuf/wrappers.pb.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "net/connect.h"
#include "net/http_server.h"

namespace slipway::net {
namespace {

using google::protobuf::StringValue;
using namespace std::chrono_literals;

std::vector<Envelope> FeedAll(EnvelopeReader& reader, std::string_view bytes, size_t piece) {
  std::vector<Envelope> out;
  for (size_t i = 0; i < bytes.size(); i += piece) {
    Status st = reader.Feed(bytes.substr(i, piece), [&](Envelope e) {
      out.push_back(std::move(e));
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  return out;
}

TEST(ConnectEnvelopeTest, HeaderIsFlagsThenBigEndianLength) {
  EXPECT_EQ(EncodeEnvelope(0, "abc"), std::string("\x00\x00\x00\x00\x03"
                                                  "abc",
                                                  8));
  std::string big(300, 'x');
  std::string encoded = EncodeEnvelope(kEnvelopeEndStream, big);
  ASSERT_EQ(encoded.size(), 305u);
  EXPECT_EQ(encoded.substr(0, 5), std::string("\x02\x00\x00\x01\x2c", 5));
  EXPECT_EQ(encoded.substr(5), big);
  EXPECT_EQ(EncodeEnvelope(0, ""), std::string(5, '\0'));
}

TEST(ConnectEnvelopeTest, ReaderFindsTheSameEnvelopesHoweverTheBytesAreSplit) {
  const std::string wire = EncodeEnvelope(0, "first") + EncodeEnvelope(0, "") +
                           EncodeEnvelope(0, std::string(70000, 'y')) +
                           EncodeEnvelope(kEnvelopeEndStream, "{}");
  for (size_t piece : {size_t{1}, size_t{3}, size_t{5}, size_t{4096}, wire.size()}) {
    EnvelopeReader reader(1 << 20);
    std::vector<Envelope> got = FeedAll(reader, wire, piece);
    ASSERT_EQ(got.size(), 4u) << "piece " << piece;
    EXPECT_EQ(got[0].message, "first");
    EXPECT_FALSE(got[0].end_stream());
    EXPECT_EQ(got[1].message, "");
    EXPECT_EQ(got[2].message, std::string(70000, 'y'));
    EXPECT_EQ(got[3].flags, kEnvelopeEndStream);
    EXPECT_TRUE(got[3].end_stream());
    EXPECT_FALSE(reader.partial());
  }
}

TEST(ConnectEnvelopeTest, ReaderSaysWhenAnEnvelopeIsCut) {
  EnvelopeReader reader(1024);
  std::string wire = EncodeEnvelope(0, "hello");
  std::vector<Envelope> got = FeedAll(reader, wire.substr(0, 3), 3);
  EXPECT_TRUE(got.empty());
  EXPECT_TRUE(reader.partial());
  got = FeedAll(reader, wire.substr(3, 4), 4);
  EXPECT_TRUE(got.empty());
  EXPECT_TRUE(reader.partial());
  got = FeedAll(reader, wire.substr(7), 10);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].message, "hello");
  EXPECT_FALSE(reader.partial());
}

TEST(ConnectEnvelopeTest, OversizedMessageIsRefusedFromItsHeader) {
  EnvelopeReader reader(10);
  int delivered = 0;
  // Only the header of an 11-byte message: refused before any of its bytes arrive.
  Status st = reader.Feed(std::string("\x00\x00\x00\x00\x0b", 5), [&](Envelope) {
    ++delivered;
    return Status::Ok();
  });
  EXPECT_EQ(st.code(), Code::kResourceExhausted) << st.ToString();
  EXPECT_EQ(delivered, 0);
}

TEST(ConnectEnvelopeTest, ReaderStopsAtTheFirstErrorOfItsCallback) {
  EnvelopeReader reader(1024);
  std::vector<std::string> seen;
  Status st = reader.Feed(EncodeEnvelope(0, "a") + EncodeEnvelope(0, "b") + EncodeEnvelope(0, "c"),
                          [&](Envelope e) {
                            seen.push_back(e.message);
                            return e.message == "b" ? Status::Aborted("enough") : Status::Ok();
                          });
  EXPECT_EQ(st.code(), Code::kAborted);
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));
}

TEST(ConnectEndStreamTest, SuccessWithoutTrailersIsTheEmptyObject) {
  EXPECT_EQ(nlohmann::json::parse(EndStreamJson(Status::Ok(), {})), nlohmann::json::object());
  EXPECT_TRUE(ParseEndStreamJson("{}", nullptr).ok());
}

TEST(ConnectEndStreamTest, ErrorAndMetadataFollowTheSpecShape) {
  Headers trailers{{"X-Cost", "237"}, {"x-cost", "12"}, {"X-Node", "a"}};
  std::string json = EndStreamJson(Status::NotFound("no deployment dep_1"), trailers);
  auto parsed = nlohmann::json::parse(json);
  EXPECT_EQ(parsed["error"]["code"], "not_found");
  EXPECT_EQ(parsed["error"]["message"], "no deployment dep_1");
  EXPECT_EQ(parsed["metadata"]["x-cost"], (nlohmann::json{"237", "12"}));
  EXPECT_EQ(parsed["metadata"]["x-node"], (nlohmann::json{"a"}));

  Headers back;
  Status st = ParseEndStreamJson(json, &back);
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_EQ(st.message(), "no deployment dep_1");
  EXPECT_EQ(back.GetOr("x-node", ""), "a");
  EXPECT_EQ(back.size(), 3u);
}

TEST(ConnectEndStreamTest, MalformedEndOfStreamIsInternal) {
  for (std::string_view bad : {"", "[]", "not json", R"({"error":{}})", R"({"error":"x"})",
                               R"({"error":{"code":null}})", R"({"metadata":{"a":"b"}})"}) {
    Headers trailers;
    EXPECT_EQ(ParseEndStreamJson(bad, &trailers).code(), Code::kInternal) << bad;
  }
  // "ok" is not an error code: a server that sends it is confused, not successful.
  EXPECT_EQ(ParseEndStreamJson(R"({"error":{"code":"ok"}})", nullptr).code(), Code::kUnknown);
  Status no_message = ParseEndStreamJson(R"({"error":{"code":"unavailable"}})", nullptr);
  EXPECT_EQ(no_message.code(), Code::kUnavailable);
  EXPECT_FALSE(no_message.message().empty());
}

// A bound on waits that only a broken implementation reaches (never a measured time).
constexpr auto kStuck = 20s;

class ConnectStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Sends "<value>-1" .. "<value>-3"; each message only after the client has seen the one
    // before: a stream buffered anywhere would never get past the first.
    router_.ServerStreaming<StringValue, StringValue>(
        "/test.v1.Stream/Count",
        [this](CallContext& ctx, const StringValue& req, StreamWriter<StringValue>& out) {
          ctx.response_headers().Add("X-Stream", "count");
          ctx.response_trailers().Add("X-Sent", "3");
          for (int i = 1; i <= 3; ++i) {
            StringValue m;
            m.set_value(req.value() + "-" + std::to_string(i));
            SLIPWAY_RETURN_IF_ERROR(out.Send(m));
            std::unique_lock lock(mu_);
            if (!cv_.wait_for(lock, kStuck, [&] { return client_seen_ >= i || out.Cancelled(); })) {
              return Status::Internal("the client never saw message " + std::to_string(i));
            }
          }
          return Status::Ok();
        });
    // One message, then the error named in the request.
    router_.ServerStreaming<StringValue, StringValue>(
        "/test.v1.Stream/Fail",
        [](CallContext&, const StringValue& req, StreamWriter<StringValue>& out) {
          StringValue m;
          m.set_value("before the error");
          SLIPWAY_RETURN_IF_ERROR(out.Send(m));
          return Status(CodeFromName(req.value()), "failed with " + req.value() + " on purpose");
        });
    // Sends until nobody listens, then says how it ended.
    router_.ServerStreaming<StringValue, StringValue>(
        "/test.v1.Stream/Forever",
        [this](CallContext& ctx, const StringValue&, StreamWriter<StringValue>& out) {
          StringValue m;
          m.set_value("tick");
          Status sent = out.Send(m);
          while (sent.ok() && !out.Cancelled()) std::this_thread::sleep_for(20ms);
          {
            std::lock_guard lock(mu_);
            forever_ended_ = true;
            forever_deadline_passed_ = ctx.deadline_passed();
          }
          cv_.notify_all();
          if (ctx.deadline_passed()) return Status::DeadlineExceeded("the deadline passed");
          return Status::Unavailable("the stream was abandoned");
        });
    router_.Unary<StringValue, StringValue>(
        "/test.v1.Stream/Unary", [](CallContext&, const StringValue& req, StringValue* resp) {
          resp->set_value(req.value());
          return Status::Ok();
        });
    auto server = HttpServer::Start({}, router_.AsHandler());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    base_url_ = "http://" + server_->address();
  }

  ConnectClient Client(bool binary) {
    ConnectClient::Options options;
    options.base_url = base_url_;
    options.binary = binary;
    return ConnectClient(options);
  }

  void SawMessage() {
    {
      std::lock_guard lock(mu_);
      ++client_seen_;
    }
    cv_.notify_all();
  }

  bool WaitForeverEnded() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kStuck, [&] { return forever_ended_; });
  }

  ConnectRouter router_;
  std::unique_ptr<HttpServer> server_;
  std::string base_url_;
  std::mutex mu_;
  std::condition_variable cv_;
  int client_seen_ = 0;
  bool forever_ended_ = false;
  bool forever_deadline_passed_ = false;
};

TEST_F(ConnectStreamTest, MessagesArriveOneByOneInJsonAndBinary) {
  for (bool binary : {false, true}) {
    {
      std::lock_guard lock(mu_);
      client_seen_ = 0;
    }
    std::vector<std::string> got;
    StringValue req;
    req.set_value(binary ? "bin" : "json");
    Status st =
        Client(binary).Stream<StringValue>("/test.v1.Stream/Count", req, [&](const StringValue& m) {
          got.push_back(m.value());
          SawMessage();
          return true;
        });
    ASSERT_TRUE(st.ok()) << st.ToString();
    std::string p = req.value();
    EXPECT_EQ(got, (std::vector<std::string>{p + "-1", p + "-2", p + "-3"}));
  }
}

TEST_F(ConnectStreamTest, WireIsChunkedEnvelopesEndingWithTheEndOfStreamMessage) {
  // Let the handler run to its end without a ConnectClient acknowledging anything.
  {
    std::lock_guard lock(mu_);
    client_seen_ = 3;
  }
  HttpClient http;
  ClientRequest raw;
  raw.method = "POST";
  raw.url = base_url_ + "/test.v1.Stream/Count";
  raw.headers.Set("Content-Type", "application/connect+json");
  raw.body = EncodeEnvelope(0, R"("raw")");  // StringValue's JSON is the bare string
  auto res = http.Do(raw);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->headers.GetOr("Content-Type", ""), "application/connect+json");
  EXPECT_EQ(res->headers.GetOr("Transfer-Encoding", ""), "chunked");
  EXPECT_EQ(res->headers.GetOr("X-Stream", ""), "count");
  EnvelopeReader reader(1024);
  std::vector<Envelope> got = FeedAll(reader, res->body, res->body.size());
  ASSERT_EQ(got.size(), 4u) << res->body;
  EXPECT_EQ(nlohmann::json::parse(got[0].message), "raw-1");
  EXPECT_EQ(got[2].flags, 0);
  EXPECT_EQ(got[3].flags, kEnvelopeEndStream);
  EXPECT_EQ(nlohmann::json::parse(got[3].message),
            (nlohmann::json{{"metadata", {{"x-sent", {"3"}}}}}));
}

TEST_F(ConnectStreamTest, HandlerErrorEndsTheStreamAfterItsMessages) {
  for (bool binary : {false, true}) {
    std::vector<std::string> got;
    StringValue req;
    req.set_value("permission_denied");
    Status st =
        Client(binary).Stream<StringValue>("/test.v1.Stream/Fail", req, [&](const StringValue& m) {
          got.push_back(m.value());
          return true;
        });
    EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
    EXPECT_EQ(st.message(), "failed with permission_denied on purpose");
    EXPECT_EQ(got, (std::vector<std::string>{"before the error"}));
  }
}

TEST_F(ConnectStreamTest, ProcedureTheServerLacksIsUnimplemented) {
  StringValue req;
  Status st = Client(false).Stream<StringValue>("/test.v1.Stream/Missing", req,
                                                [](const StringValue&) { return true; });
  EXPECT_EQ(st.code(), Code::kUnimplemented) << st.ToString();
}

TEST_F(ConnectStreamTest, StreamAndUnaryContentTypesAreNotMixedUp) {
  HttpClient http;
  ClientRequest raw;
  raw.method = "POST";
  raw.url = base_url_ + "/test.v1.Stream/Count";
  raw.headers.Set("Content-Type", "application/json");
  raw.body = "{}";
  auto res = http.Do(raw);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 415);
  EXPECT_NE(res->headers.GetOr("Accept-Post", "").find("application/connect+json"),
            std::string::npos);

  // A unary procedure called as a stream is refused as its content type, not misread.
  StringValue req;
  Status st = Client(false).Stream<StringValue>("/test.v1.Stream/Unary", req,
                                                [](const StringValue&) { return true; });
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
}

TEST_F(ConnectStreamTest, RequestMustBeExactlyOneEnvelope) {
  HttpClient http;
  for (std::string body : {std::string(), EncodeEnvelope(0, "{}") + EncodeEnvelope(0, "{}"),
                           EncodeEnvelope(0, "{}").substr(0, 6), EncodeEnvelope(1, "{}"),
                           EncodeEnvelope(0, "{not json")}) {
    ClientRequest raw;
    raw.method = "POST";
    raw.url = base_url_ + "/test.v1.Stream/Count";
    raw.headers.Set("Content-Type", "application/connect+json");
    raw.body = body;
    auto res = http.Do(raw);
    ASSERT_TRUE(res.ok());
    EXPECT_EQ(res->status, 200);  // a stream's errors travel in its end-of-stream message
    EnvelopeReader reader(1024);
    std::vector<Envelope> got = FeedAll(reader, res->body, res->body.size());
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(ParseEndStreamJson(got[0].message, nullptr).code(), Code::kInvalidArgument)
        << got[0].message;
  }
}

TEST_F(ConnectStreamTest, ClientThatStopsReadingEndsTheHandlersWait) {
  StringValue req;
  int seen = 0;
  Status st =
      Client(false).Stream<StringValue>("/test.v1.Stream/Forever", req, [&](const StringValue&) {
        ++seen;
        return false;
      });
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(seen, 1);
  ASSERT_TRUE(WaitForeverEnded()) << "the handler never learned that its client left";
}

TEST_F(ConnectStreamTest, DeadlineEndsTheStreamOnBothSides) {
  // The client enforces the deadline itself.
  StringValue req;
  StreamCallOptions call;
  call.timeout = 300ms;
  Status st = Client(true).Stream<StringValue>(
      "/test.v1.Stream/Forever", req, [](const StringValue&) { return true; }, call);
  EXPECT_EQ(st.code(), Code::kDeadlineExceeded) << st.ToString();
  ASSERT_TRUE(WaitForeverEnded());
  {
    std::lock_guard lock(mu_);
    forever_ended_ = false;
  }

  // The server, too, for a client that only sends the header and waits on: its handler sees
  // the deadline pass and the end-of-stream message says deadline_exceeded. (With the client
  // above, its own close may reach the server first: that handler may see either.)
  HttpClient http;
  ClientRequest raw;
  raw.method = "POST";
  raw.url = base_url_ + "/test.v1.Stream/Forever";
  raw.headers.Set("Content-Type", "application/connect+json");
  raw.headers.Set("Connect-Timeout-Ms", "300");
  raw.body = EncodeEnvelope(0, "{}");
  raw.timeout = kStuck;
  auto res = http.Do(raw);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EnvelopeReader reader(1024);
  std::vector<Envelope> got = FeedAll(reader, res->body, res->body.size());
  ASSERT_FALSE(got.empty());
  ASSERT_TRUE(got.back().end_stream());
  EXPECT_EQ(ParseEndStreamJson(got.back().message, nullptr).code(), Code::kDeadlineExceeded)
      << got.back().message;
  ASSERT_TRUE(WaitForeverEnded());
  std::lock_guard lock(mu_);
  EXPECT_TRUE(forever_deadline_passed_);
}

TEST_F(ConnectStreamTest, CallerCancelEndsTheCall) {
  StringValue req;
  std::atomic<bool> cancel{false};
  StreamCallOptions call;
  call.cancelled = [&] { return cancel.load(); };
  Status st = Client(false).Stream<StringValue>(
      "/test.v1.Stream/Forever", req,
      [&](const StringValue&) {
        cancel = true;
        return true;
      },
      call);
  EXPECT_EQ(st.code(), Code::kCanceled) << st.ToString();
  ASSERT_TRUE(WaitForeverEnded());
}

TEST_F(ConnectStreamTest, ServerShutdownEndsAWaitingStream) {
  StringValue req;
  std::thread stopper;
  Status st =
      Client(false).Stream<StringValue>("/test.v1.Stream/Forever", req, [&](const StringValue&) {
        stopper = std::thread([&] { server_->Shutdown(); });
        return true;
      });
  stopper.join();
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  ASSERT_TRUE(WaitForeverEnded());
}

}  // namespace
}  // namespace slipway::net
