// Strict HTTP/1.1 head parsing and the in-place chunked decoder the proxy engine relies on.
#include "net/http_wire.h"

#include <gtest/gtest.h>

#include <string>

namespace slipway::net {
namespace {

TEST(HttpWireTest, ParsesARequestHeadAndItsFraming) {
  std::string head =
      "POST /up?x=1 HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 12\r\n"
      "Expect: 100-continue\r\nX-Spaced:   v  \r\n\r\n";
  ASSERT_EQ(HeadLength(head + "body"), head.size());
  EXPECT_FALSE(HeadLength(head.substr(0, head.size() - 1)).has_value());
  auto r = ParseRequestHead(head);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->method, "POST");
  EXPECT_EQ(r->target, "/up?x=1");
  EXPECT_EQ(r->content_length, 12u);
  EXPECT_FALSE(r->chunked);
  EXPECT_TRUE(r->keep_alive);
  EXPECT_TRUE(r->expect_continue);
  EXPECT_EQ(r->headers.GetOr("X-Spaced", ""), "v");

  auto close = ParseRequestHead("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n");
  ASSERT_TRUE(close.ok());
  EXPECT_FALSE(close->keep_alive);
  auto old = ParseRequestHead("GET / HTTP/1.0\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->keep_alive);
  auto chunked = ParseRequestHead("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
  ASSERT_TRUE(chunked.ok());
  EXPECT_TRUE(chunked->chunked);
  EXPECT_FALSE(chunked->content_length.has_value());
}

TEST(HttpWireTest, RefusesHeadsTwoParsersCouldReadTwoWays) {
  const char* bad[] = {
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n",
      "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
      "GET / HTTP/1.1\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
      "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n",
  };
  for (const char* head : bad) {
    auto r = ParseRequestHead(head);
    EXPECT_FALSE(r.ok()) << head;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << head;
    }
  }
  std::string long_host = "GET / HTTP/1.1\r\nHost: " + std::string(kMaxHostBytes + 1, 'h') + "\r\n\r\n";
  EXPECT_FALSE(ParseRequestHead(long_host).ok());
}

// What can never become a valid head is refused from its first bytes, whichever way the bytes
// are split into reads; a valid head trickling in is never refused on the way.
TEST(HttpWireTest, RefusesAHeadThatCanNeverEndWellBeforeItEnds) {
  auto check_in_pieces = [](std::string_view data, size_t piece) {
    Status last = Status::Ok();
    for (size_t end = std::min(piece, data.size()), from = 0; from < data.size();
         from = end, end = std::min(end + piece, data.size())) {
      last = CheckPartialRequestHead(data.substr(0, end), from);
      if (!last.ok()) return last;
    }
    return last;
  };
  std::string good = "GET /index.html HTTP/1.1\r\nHost: a.localhost\r\nX-A: b\r\n\r";
  for (size_t piece : {1, 2, 3, 7, 100}) {
    EXPECT_TRUE(check_in_pieces(good, piece).ok()) << piece;
    auto bare_lf = check_in_pieces("GET / HTTP/1.1\nHost: a\n", piece);
    EXPECT_NE(bare_lf.message().find("bare LF"), std::string::npos) << piece << bare_lf.ToString();
    auto bare_cr = check_in_pieces("GET / HTTP/1.1\r\nHost: a\rX", piece);
    EXPECT_NE(bare_cr.message().find("CR without LF"), std::string::npos) << piece;
    auto tls = check_in_pieces(std::string("\x16\x03\x01\x02\x00\x01", 6), piece);
    EXPECT_NE(tls.message().find("TLS"), std::string::npos) << piece;
    auto garbage = check_in_pieces("GE\x01T / HTTP/1.1\r\n", piece);
    EXPECT_NE(garbage.message().find("not an HTTP request"), std::string::npos) << piece;
    EXPECT_FALSE(check_in_pieces(std::string(40, 'G'), piece).ok()) << piece;
    EXPECT_FALSE(check_in_pieces(" / HTTP/1.1\r\n", piece).ok()) << piece;
  }
}

TEST(HttpWireTest, ParsesAResponseHeadIntoViewsOfItsBytes) {
  const std::string bytes =
      "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\nX-App:  a b \r\n\r\n";
  ResponseHead r;
  ASSERT_TRUE(ParseResponseHead(bytes, &r).ok());
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_length, 3u);
  EXPECT_TRUE(r.close);
  ASSERT_EQ(r.fields.size(), 3u);
  EXPECT_EQ(r.Get("x-app"), "a b");  // white space around the value is not part of it
  // The values are the head's own bytes, not copies.
  EXPECT_GE(r.Get("X-App")->data(), bytes.data());
  EXPECT_LT(r.Get("X-App")->data(), bytes.data() + bytes.size());
  // The same head parses the next response: nothing of the last one stays.
  ASSERT_TRUE(ParseResponseHead("HTTP/1.1 204\r\n\r\n", &r).ok());
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(r.fields.empty());
  EXPECT_FALSE(r.close);
  EXPECT_FALSE(r.content_length.has_value());
  EXPECT_FALSE(ResponseHasBody("GET", 204));
  EXPECT_FALSE(ResponseHasBody("HEAD", 200));
  EXPECT_TRUE(ResponseHasBody("GET", 200));
  EXPECT_FALSE(ParseResponseHead("HTTP/1.1 20 OK\r\n\r\n", &r).ok());
  EXPECT_FALSE(
      ParseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &r)
          .ok());
  ASSERT_TRUE(ParseResponseHead("HTTP/1.0 200 OK\r\n\r\n", &r).ok());
  EXPECT_TRUE(r.close) << "HTTP/1.0 without keep-alive closes";
}

TEST(HttpWireTest, HopByHopFieldsAreTheFixedOnesAndThoseConnectionNames) {
  for (std::string_view name : {"Connection", "keep-alive", "TE", "Transfer-Encoding", "Upgrade",
                                "Proxy-Authorization", "Trailer", "Proxy-Connection"}) {
    EXPECT_TRUE(IsHopByHopField(name)) << name;
  }
  EXPECT_FALSE(IsHopByHopField("Content-Type"));
  EXPECT_FALSE(IsHopByHopField("Trailers"));
  std::vector<FieldView> fields = {{"Connection", "close, X-Private"}, {"X-Private", "1"}};
  EXPECT_TRUE(NamedByConnection(fields, "x-private"));
  EXPECT_TRUE(NamedByConnection(fields, "close"));
  EXPECT_FALSE(NamedByConnection(fields, "X-Priv"));
  EXPECT_TRUE(HasToken(" a ,b,\tc ", "C"));
  EXPECT_FALSE(HasToken("ab", "a"));
}

// Decodes body fed in pieces of `piece` bytes; returns the payload and what followed the body.
std::pair<std::string, std::string> DecodeInPieces(const std::string& body, size_t piece,
                                                   Status* error) {
  ChunkedDecoder decoder;
  std::string payload, rest;
  for (size_t at = 0; at < body.size(); at += piece) {
    std::string part = body.substr(at, piece);
    if (decoder.done()) {
      rest += part;
      continue;
    }
    auto step = decoder.Decode(part.data(), part.size());
    if (!step.ok()) {
      *error = step.status();
      return {};
    }
    payload.append(part.data(), step->payload);
    rest.append(part.data() + step->consumed, part.size() - step->consumed);
  }
  return {payload, rest};
}

TEST(HttpWireTest, DecodesChunkedBodiesSplitAnywhere) {
  std::string body =
      "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
  for (size_t piece = 1; piece <= body.size(); ++piece) {
    Status error;
    auto [payload, rest] = DecodeInPieces(body, piece, &error);
    ASSERT_TRUE(error.ok()) << piece << ": " << error.ToString();
    EXPECT_EQ(payload, "helloabcdefghijklmnopqrstuvwxyz") << piece;
    EXPECT_EQ(rest, "NEXT") << piece;
  }
  for (std::string bad : {"zz\r\n", "5\r\nhelloX\r\n", "5\nhello\r\n", "fffffffffffffffff\r\n",
                          "3\r\nabc\r\n0\r\nbad\n"}) {
    Status error;
    DecodeInPieces(bad, bad.size(), &error);
    EXPECT_FALSE(error.ok()) << bad;
  }
  EXPECT_EQ(ChunkSizeLine(255), "ff\r\n");
}

}  // namespace
}  // namespace slipway::net
