// Signature Version 2: the string to sign and the signature against AWS's documented example,
// and verification of header and query authentication.
#include "storage/sigv2.h"

#include <gtest/gtest.h>

#include "net/http_server.h"

namespace slipway::storage {
namespace {

using std::chrono::system_clock;

constexpr char kKey[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

SecretLookup Secrets() {
  return [](std::string_view key) -> std::optional<std::string> {
    if (key == kKey) return std::string(kSecret);
    return std::nullopt;
  };
}

net::HttpRequest Request(std::string method, std::string path, std::string query = "") {
  net::HttpRequest req;
  req.method = std::move(method);
  req.path = std::move(path);
  req.query = std::move(query);
  req.target = req.path + (req.query.empty() ? "" : "?" + req.query);
  return req;
}

system_clock::time_point At(std::string_view http_date) {
  system_clock::time_point t;
  EXPECT_TRUE(ParseHttpDate(http_date, &t)) << http_date;
  return t;
}

TEST(SigV2Test, SignsAwsDocumentedExample) {
  auto req = Request("GET", "/johnsmith/photos/puppy.jpg");
  req.headers.Add("Date", "Tue, 27 Mar 2007 19:36:42 +0000");
  std::string sts = StringToSignV2(req, "Tue, 27 Mar 2007 19:36:42 +0000");
  EXPECT_EQ(sts, "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg");
  EXPECT_EQ(SignV2(kSecret, sts), "bWq2s1WEIj+Ydj0vQ697zp+IXMU=");

  req.headers.Add("Authorization", std::string("AWS ") + kKey + ":bWq2s1WEIj+Ydj0vQ697zp+IXMU=");
  auto ok = VerifyRequestV2(req, Secrets(), At("Tue, 27 Mar 2007 19:40:00 GMT"));
  ASSERT_TRUE(std::holds_alternative<VerifiedRequest>(ok));
  EXPECT_EQ(std::get<VerifiedRequest>(ok).payload_hash, kUnsignedPayload);

  auto skewed = VerifyRequestV2(req, Secrets(), At("Tue, 27 Mar 2007 20:00:00 GMT"));
  ASSERT_TRUE(std::holds_alternative<AuthFailure>(skewed));
  EXPECT_EQ(std::get<AuthFailure>(skewed).error, AuthError::kSkewed);
}

TEST(SigV2Test, CanonicalResourceKeepsSignedSubresourcesSortedAndAmzHeaders) {
  auto req = Request("PUT", "/b/k", "uploadId=abc&partNumber=2&foo=bar");
  req.headers.Add("Content-Type", "text/plain");
  req.headers.Add("X-Amz-Meta-B", "2");
  req.headers.Add("x-amz-meta-a", " 1 ");
  EXPECT_EQ(StringToSignV2(req, "D"),
            "PUT\n\ntext/plain\nD\nx-amz-meta-a:1\nx-amz-meta-b:2\n/b/k?partNumber=2&uploadId=abc");
  auto acl = Request("GET", "/b", "acl");
  EXPECT_EQ(StringToSignV2(acl, "D"), "GET\n\n\nD\n/b?acl");
}

TEST(SigV2Test, PresignedQueryExpiresAndSignatureAreChecked) {
  auto t = At("Tue, 27 Mar 2007 19:36:42 GMT");
  int64_t expires = system_clock::to_time_t(t) + 60;
  auto req = Request("GET", "/b/k");
  std::string sig = SignV2(kSecret, StringToSignV2(req, std::to_string(expires)));
  req.query = std::string("AWSAccessKeyId=") + kKey + "&Expires=" + std::to_string(expires) +
              "&Signature=" + net::UriEncode(sig);
  ASSERT_TRUE(IsSignatureV2(req));
  auto ok = VerifyRequestV2(req, Secrets(), t);
  ASSERT_TRUE(std::holds_alternative<VerifiedRequest>(ok));
  EXPECT_TRUE(std::get<VerifiedRequest>(ok).presigned);

  auto late = VerifyRequestV2(req, Secrets(), t + std::chrono::seconds(61));
  ASSERT_TRUE(std::holds_alternative<AuthFailure>(late));
  EXPECT_EQ(std::get<AuthFailure>(late).error, AuthError::kExpired);

  auto other = req;
  other.path = "/b/other";
  auto bad = VerifyRequestV2(other, Secrets(), t);
  ASSERT_TRUE(std::holds_alternative<AuthFailure>(bad));
  EXPECT_EQ(std::get<AuthFailure>(bad).error, AuthError::kSignatureMismatch);
}

// An Expires no time point can hold (past 2262, before 1677) is compared without overflowing:
// the far future is still valid (and here the signature is what fails), the far past expired.
TEST(SigV2Test, PresignedExpiresFarOutsideTheRepresentableYearsDoesNotOverflow) {
  auto t = At("Tue, 27 Mar 2007 19:36:42 GMT");
  for (std::string expires : {"99999999999999", "-99999999999999"}) {
    auto req = Request("GET", "/b/k");
    req.query = std::string("AWSAccessKeyId=") + kKey + "&Expires=" + expires + "&Signature=AAAA";
    auto got = VerifyRequestV2(req, Secrets(), t);
    ASSERT_TRUE(std::holds_alternative<AuthFailure>(got)) << expires;
    EXPECT_EQ(std::get<AuthFailure>(got).error,
              expires[0] == '-' ? AuthError::kExpired : AuthError::kSignatureMismatch)
        << expires << ": " << std::get<AuthFailure>(got).message;
  }
}

TEST(HttpDateTest, AcceptsImfFixdateNumericZonesAndObsoleteForms) {
  system_clock::time_point gmt, zero, plus, rfc850, asctime;
  ASSERT_TRUE(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT", &gmt));
  ASSERT_TRUE(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 -0000", &zero));
  ASSERT_TRUE(ParseHttpDate("Sun, 06 Nov 1994 09:49:37 +0100", &plus));
  ASSERT_TRUE(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", &rfc850));
  ASSERT_TRUE(ParseHttpDate("Sun Nov  6 08:49:37 1994", &asctime));
  EXPECT_EQ(gmt, zero);
  EXPECT_EQ(gmt, plus);
  EXPECT_EQ(gmt, rfc850);
  EXPECT_EQ(gmt, asctime);
  EXPECT_FALSE(ParseHttpDate("yesterday", &gmt));
  EXPECT_FALSE(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 CET", &gmt));
}

}  // namespace
}  // namespace slipway::storage
