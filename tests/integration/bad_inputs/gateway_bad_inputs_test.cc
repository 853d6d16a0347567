// Bad input at the gateway, black-box: raw bytes over a socket to a `slipway run gateway`
// process, so the cases hold whichever HTTP engine the gateway runs. Each case asserts the three
// things docs/bad-inputs.md promises: a clear error (a 4xx status whose body is a sentence),
// nothing changed (the app behind the gateway received no request at all, so nothing was
// smuggled past the gateway or half-forwarded), and no crash (the process still runs and serves
// the next, good request).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "integration/gateway/gateway_test_support.h"
#include "support/test_support.h"

namespace slipway::gateway {
namespace {

using slipway::testing::FreePort;
using slipway::testing::Process;
using slipway::testing::ReadFile;
using slipway::testing::SlipwayBinary;
using slipway::testing::TempDir;
using slipway::testing::WaitForPort;
using testing::Fetch;
using testing::Partition;
using testing::RawClient;
using testing::Upstream;

constexpr std::string_view kHost = "app.localhost";

struct BadRequest {
  std::string name;
  std::string bytes;  // exactly what the client sends
  std::vector<int> statuses;  // any of these is a right answer
};

std::string Repeat(std::string_view s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

// The start of a TLS 1.2/1.3 ClientHello, as a browser sends it to an https:// URL: a handshake
// record (0x16, version 3.1, its length), then the ClientHello (type 1, its length, 3.3, random).
std::string TlsClientHello() {
  std::string hello("\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03", 11);
  for (int i = 0; i < 32; ++i) hello += static_cast<char>(0x20 + i * 7);
  hello += std::string("\x00\x00\x02\x13\x01\x01\x00", 7);
  return hello;
}

std::vector<BadRequest> Cases() {
  const std::string host = "Host: " + std::string(kHost) + "\r\n";
  // What a smuggling attempt hides after its first body: a request the app must never see.
  const std::string smuggled = "GET /smuggled HTTP/1.1\r\n" + host + "\r\n";
  return {
      {"ContentLengthAndChunked",
       "POST /a HTTP/1.1\r\n" + host + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n" +
           "0\r\n\r\n" + smuggled,
       {400}},
      {"ChunkedAndContentLength",
       "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n" +
           "0\r\n\r\n" + smuggled,
       {400}},
      {"TwoDifferentContentLengths",
       "POST /a HTTP/1.1\r\n" + host + "Content-Length: 3\r\nContent-Length: 30\r\n\r\nabc" +
           smuggled,
       {400}},
      {"ContentLengthList",
       "POST /a HTTP/1.1\r\n" + host + "Content-Length: 3, 30\r\n\r\nabc" + smuggled, {400}},
      {"NegativeContentLength",
       "POST /a HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n" + smuggled, {400}},
      {"ChunkedNotLast",
       "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" +
           smuggled,
       {400, 501}},
      {"UnknownTransferEncoding",
       "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggled,
       {400, 501}},
      {"SpaceBeforeColon",
       "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled,
       {400}},
      {"FoldedHost", "GET /a HTTP/1.1\r\nHost: app\r\n .localhost\r\n\r\n", {400}},
      {"MissingHost", "GET /a HTTP/1.1\r\n\r\n", {400}},
      {"EmptyHost", "GET /a HTTP/1.1\r\nHost: \r\n\r\n", {400}},
      {"TwoHosts", "GET /a HTTP/1.1\r\n" + host + "Host: other.localhost\r\n\r\n", {400}},
      {"HostWithSpace", "GET /a HTTP/1.1\r\nHost: app localhost\r\n\r\n", {400}},
      {"HostWithUserinfo", "GET /a HTTP/1.1\r\nHost: user@app.localhost\r\n\r\n", {400}},
      {"HostWithBadPort", "GET /a HTTP/1.1\r\nHost: app.localhost:80x\r\n\r\n", {400}},
      {"HostWithPath", "GET /a HTTP/1.1\r\nHost: app.localhost/x\r\n\r\n", {400}},
      {"HostLabelTooLong",
       "GET /a HTTP/1.1\r\nHost: " + std::string(64, 'a') + ".localhost\r\n\r\n", {400, 404}},
      {"HostTooLong", "GET /a HTTP/1.1\r\nHost: " + Repeat("abcdefgh.", 40) + "localhost\r\n\r\n",
       {400, 404}},
      {"OversizedHost",
       "GET /a HTTP/1.1\r\nHost: " + Repeat("a.", 40 * 1024) + "localhost\r\n\r\n", {431, 400}},
      {"OversizedHeaderSection",
       "GET /a HTTP/1.1\r\n" + host + Repeat("X-Pad: " + std::string(1000, 'p') + "\r\n", 100) +
           "\r\n",
       {431}},
      {"AbsoluteFormTarget", "GET http://app.localhost/a HTTP/1.1\r\n" + host + "\r\n", {400}},
      {"AbsoluteFormOtherHost", "GET http://evil.example/a HTTP/1.1\r\n" + host + "\r\n", {400}},
      {"AsteriskFormTarget", "OPTIONS * HTTP/1.1\r\n" + host + "\r\n", {400}},
      {"ControlCharacterInTarget", "GET /a\x01z HTTP/1.1\r\n" + host + "\r\n", {400}},
      {"NulInHeaderValue", "GET /a HTTP/1.1\r\n" + host + "X-A: a" + std::string(1, '\0') + "b\r\n\r\n",
       {400}},
      // Answered at once, not after the header timeout: a head with bare LF line ends never
      // shows the CRLF CRLF that would end it, and TLS bytes never show a method.
      {"BareLineFeedsInHeaders", "GET /a HTTP/1.1\nHost: app.localhost\n\n" + smuggled, {400}},
      {"BareCarriageReturnInHeaders", "GET /a HTTP/1.1\r\nHost: app.localhost\rX: y\r\n" + smuggled,
       {400}},
      {"NotHttpAtAll", TlsClientHello() + smuggled, {400}},
      {"BinaryGarbage", std::string("\x00\x01\x02\xff GET / HTTP/1.1\r\n\r\n", 23) + smuggled, {400}},
      // A chunked body malformed from its first chunk on, sent with the head: refused before the
      // app hears of the request.
      {"MalformedChunkSize",
       "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" +
           smuggled,
       {400}},
      {"ChunkLongerThanItsSize",
       "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n" +
           smuggled,
       {400}},
  };
}

class GatewayBadInputTest : public ::testing::TestWithParam<BadRequest> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    std::string db = (dir_->path() / "partition.db").string();
    partition_ = new Partition(db);
    upstream_ = new Upstream("app");
    partition_->Route(std::string(kHost), "dep_app");
    partition_->Instance("dep_app", "i1", upstream_->address());
    port_ = FreePort();
    log_ = (dir_->path() / "gateway.log").string();
    gateway_ = new Process({SlipwayBinary(), "run", "gateway"}, testing::GatewayEnvironment(port_, db),
                           log_);
    ASSERT_TRUE(WaitForPort(port_)) << ReadFile(log_);
    ASSERT_EQ(Fetch(port_, std::string(kHost)).body, "app") << ReadFile(log_);
  }
  static void TearDownTestSuite() {
    delete gateway_;
    delete upstream_;
    delete partition_;
    delete dir_;
  }

  static TempDir* dir_;
  static Partition* partition_;
  static Upstream* upstream_;
  static Process* gateway_;
  static int port_;
  static std::string log_;
};

TempDir* GatewayBadInputTest::dir_ = nullptr;
Partition* GatewayBadInputTest::partition_ = nullptr;
Upstream* GatewayBadInputTest::upstream_ = nullptr;
Process* GatewayBadInputTest::gateway_ = nullptr;
int GatewayBadInputTest::port_ = 0;
std::string GatewayBadInputTest::log_;

TEST_P(GatewayBadInputTest, IsRefusedReachesNoAppAndTheGatewayGoesOn) {
  const BadRequest& c = GetParam();
  int seen_before = upstream_->requests();

  RawClient client(static_cast<uint16_t>(port_));
  client.Send(c.bytes);
  std::string head = client.ReadHead();
  ASSERT_FALSE(head.empty()) << "no response at all; gateway log:\n" << ReadFile(log_);
  int status = std::stoi(head.substr(9, 3));
  EXPECT_TRUE(std::find(c.statuses.begin(), c.statuses.end(), status) != c.statuses.end())
      << "status " << status << "\n" << head;
  // A clear error: the body says what is wrong in words.
  std::string lower_head = net::ToLower(head);
  size_t length_at = lower_head.find("content-length: ");
  EXPECT_NE(length_at, std::string::npos) << head;
  if (length_at != std::string::npos) {
    size_t length = std::stoul(head.substr(length_at + 16));
    std::string body;
    ASSERT_TRUE(client.ReadExactly(length, &body)) << head;
    EXPECT_GE(body.size(), 20u) << body;
    EXPECT_NE(body.find(' '), std::string::npos) << body;
  }
  // Nothing changed: the app saw no request, neither the bad one nor anything hidden after it.
  EXPECT_EQ(upstream_->requests(), seen_before);
  for (const auto& seen : upstream_->seen()) EXPECT_NE(seen.target, "/smuggled");
  // A request whose framing is in doubt ends the connection, so what followed it is never read
  // as a request. (A bad Host or target is a whole request: the connection may go on.)
  if (c.bytes.find("/smuggled") != std::string::npos) {
    EXPECT_TRUE(client.ClosedWithin(std::chrono::seconds(5))) << "the connection stayed open";
  }

  // No crash: the process runs and answers the next request.
  EXPECT_TRUE(gateway_->running()) << ReadFile(log_);
  auto good = Fetch(static_cast<uint16_t>(port_), std::string(kHost));
  EXPECT_EQ(good.status, 200) << good.error << ReadFile(log_);
  EXPECT_EQ(good.body, "app");
}

// Obsolete line folding (RFC 9112 5.2): the gateway may refuse it or replace each fold by a
// space; it refuses it with a 400 (a continuation line is where a smuggled field would hide),
// so the app never sees the request, and the gateway goes on serving.
using GatewayFoldingTest = GatewayBadInputTest;

TEST_F(GatewayFoldingTest, ObsoleteLineFoldingIsRefusedAndNeverReachesTheApp) {
  RawClient client(static_cast<uint16_t>(port_));
  client.Send("GET /folded HTTP/1.1\r\nHost: app.localhost\r\nX-Folded: one\r\n two\r\n"
              "\tthree\r\nConnection: close\r\n\r\n");
  std::string head = client.ReadHead();
  ASSERT_FALSE(head.empty()) << ReadFile(log_);
  EXPECT_EQ(head.substr(9, 3), "400") << head;
  for (const auto& r : upstream_->seen()) EXPECT_NE(r.target, "/folded") << "forwarded";
  EXPECT_TRUE(gateway_->running());
  auto good = Fetch(static_cast<uint16_t>(port_), std::string(kHost));
  EXPECT_EQ(good.status, 200) << good.error << ReadFile(log_);
}

// A chunked body that turns malformed after its first chunk went on to the app (the gateway
// streams bodies): the client hears 400 with the reason, the app's request is abandoned with its
// connection (it never gets the bad bytes nor what follows them), and the gateway goes on.
using GatewayChunkedBodyTest = GatewayBadInputTest;

TEST_F(GatewayChunkedBodyTest, AChunkMalformedMidBodyIsAnswered400AndNeverForwarded) {
  int seen_before = upstream_->requests();
  RawClient client(static_cast<uint16_t>(port_));
  client.Send("POST /hash HTTP/1.1\r\nHost: app.localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
              "5\r\nhello\r\n");
  // The head reached the app: the body is being streamed to it now.
  for (int i = 0; i < 500 && upstream_->requests() == seen_before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(upstream_->requests(), seen_before + 1) << ReadFile(log_);
  client.Send("zz\r\nworld\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.localhost\r\n\r\n");

  std::string head = client.ReadHead();
  ASSERT_FALSE(head.empty()) << "no response at all; gateway log:\n" << ReadFile(log_);
  EXPECT_EQ(head.substr(9, 3), "400") << head;
  size_t length_at = net::ToLower(head).find("content-length: ");
  ASSERT_NE(length_at, std::string::npos) << head;
  std::string body;
  ASSERT_TRUE(client.ReadExactly(std::stoul(head.substr(length_at + 16)), &body)) << head;
  EXPECT_NE(body.find("chunked body is malformed"), std::string::npos) << body;
  EXPECT_TRUE(client.ClosedWithin(std::chrono::seconds(5))) << "the connection stayed open";
  EXPECT_EQ(upstream_->requests(), seen_before + 1);
  for (const auto& seen : upstream_->seen()) EXPECT_NE(seen.target, "/smuggled");

  EXPECT_TRUE(gateway_->running()) << ReadFile(log_);
  auto good = Fetch(static_cast<uint16_t>(port_), std::string(kHost));
  EXPECT_EQ(good.status, 200) << good.error << ReadFile(log_);
}

INSTANTIATE_TEST_SUITE_P(Requests, GatewayBadInputTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace slipway::gateway
