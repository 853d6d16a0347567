// SigV4 against AWS's published S3 examples ("Examples: Signature Calculations in AWS Signature
// Version 4", the presigned-URL example and the chunked-upload example), then the verifier
// against our own signer and against each way a request can be wrong.
#include "storage/sigv4.h"

#include <gtest/gtest.h>

#include "net/http_server.h"

namespace slipway::storage {
namespace {

using std::chrono::system_clock;

const Credentials kAws{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};
constexpr std::string_view kDate = "20130524T000000Z";
constexpr std::string_view kRegion = "us-east-1";

system_clock::time_point ExampleTime() {
  system_clock::time_point t;
  EXPECT_TRUE(ParseAmzDate(kDate, &t));
  return t;
}

// Signs a canonical request with the example credentials, as the examples do.
std::string SignExample(const CanonicalRequestInput& in) {
  std::string scope = CredentialScope("20130524", kRegion);
  return Sign(SigningKey(kAws.secret_key, "20130524", kRegion),
              StringToSign(kDate, scope, CanonicalRequest(in)));
}

TEST(SigV4Test, GetObjectWithRangeMatchesAwsExample) {
  CanonicalRequestInput in;
  in.method = "GET";
  in.raw_path = "/test.txt";
  in.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                {"Range", "bytes=0-9"},
                {"x-amz-content-sha256", std::string(kEmptySha256)},
                {"x-amz-date", std::string(kDate)}};
  in.signed_headers = {"host", "range", "x-amz-content-sha256", "x-amz-date"};
  in.payload_hash = std::string(kEmptySha256);
  EXPECT_EQ(
      CanonicalRequest(in),
      "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(SignExample(in), "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4Test, PutObjectMatchesAwsExample) {
  std::string payload_hash = Sha256Hex("Welcome to Amazon S3.");
  EXPECT_EQ(payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  CanonicalRequestInput in;
  in.method = "PUT";
  in.raw_path = "/test$file.text";  // '$' must be encoded in the canonical URI
  in.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                {"x-amz-date", std::string(kDate)},
                {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                {"x-amz-content-sha256", payload_hash}};
  in.signed_headers = {"date", "host", "x-amz-content-sha256", "x-amz-date", "x-amz-storage-class"};
  in.payload_hash = payload_hash;
  EXPECT_EQ(CanonicalRequest(in).substr(0, 20), "PUT\n/test%24file.tex");
  EXPECT_EQ(SignExample(in), "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

CanonicalRequestInput BucketGet(std::string raw_query) {
  CanonicalRequestInput in;
  in.method = "GET";
  in.raw_path = "/";
  in.raw_query = std::move(raw_query);
  in.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                {"x-amz-date", std::string(kDate)},
                {"x-amz-content-sha256", std::string(kEmptySha256)}};
  in.signed_headers = {"host", "x-amz-content-sha256", "x-amz-date"};
  in.payload_hash = std::string(kEmptySha256);
  return in;
}

TEST(SigV4Test, GetBucketLifecycleMatchesAwsExample) {
  auto in = BucketGet("lifecycle");
  EXPECT_EQ(CanonicalRequest(in).substr(0, 17), "GET\n/\nlifecycle=\n");
  EXPECT_EQ(SignExample(in), "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4Test, ListObjectsMatchesAwsExample) {
  // Given out of order: the canonical query sorts by name.
  auto in = BucketGet("prefix=J&max-keys=2");
  EXPECT_EQ(CanonicalRequest(in).substr(0, 26), "GET\n/\nmax-keys=2&prefix=J\n");
  EXPECT_EQ(SignExample(in), "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4Test, PresignMatchesAwsExample) {
  std::string url = Presign("GET", "https://examplebucket.s3.amazonaws.com/test.txt", kAws, kRegion,
                            ExampleTime(), std::chrono::seconds(86400));
  EXPECT_EQ(url,
            "https://examplebucket.s3.amazonaws.com/test.txt"
            "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST(SigV4Test, ChunkSignaturesMatchAwsChunkedExample) {
  CanonicalRequestInput in;
  in.method = "PUT";
  in.raw_path = "/examplebucket/chunkObject.txt";
  in.headers = {{"Host", "s3.amazonaws.com"},
                {"x-amz-date", std::string(kDate)},
                {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                {"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
                {"Content-Encoding", "aws-chunked"},
                {"x-amz-decoded-content-length", "66560"},
                {"Content-Length", "66824"}};
  in.signed_headers = {"content-encoding",     "content-length", "host",
                       "x-amz-content-sha256", "x-amz-date",     "x-amz-decoded-content-length",
                       "x-amz-storage-class"};
  in.payload_hash = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
  std::string seed = SignExample(in);
  ASSERT_EQ(seed, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");

  Sha256Digest key = SigningKey(kAws.secret_key, "20130524", kRegion);
  std::string scope = CredentialScope("20130524", kRegion);
  auto chunk = [&](const std::string& prev, std::string_view data) {
    return Sign(key, ChunkStringToSign(kDate, scope, prev, Sha256Hex(data)));
  };
  std::string s1 = chunk(seed, std::string(65536, 'a'));
  EXPECT_EQ(s1, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
  std::string s2 = chunk(s1, std::string(1024, 'a'));
  EXPECT_EQ(s2, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497");
  EXPECT_EQ(chunk(s2, ""), "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9");
}

TEST(SigV4Test, CanonicalFormNormalisesPathQueryAndHeaderValues) {
  CanonicalRequestInput in;
  in.method = "GET";
  in.raw_path = "/bucket/a%20b/c+d%2Fe";  // decoded once, '/' kept, '+' is a literal plus
  in.raw_query = "z=1&a=%2F+x&a=0&empty";
  in.headers = {{"Host", "h"}, {"X-Custom", "  one   two \t three  "}, {"x-custom", "four"}};
  in.signed_headers = {"host", "x-custom"};
  in.payload_hash = "UNSIGNED-PAYLOAD";
  EXPECT_EQ(CanonicalRequest(in),
            "GET\n/bucket/a%20b/c%2Bd/e\na=%2F%2Bx&a=0&empty=&z=1\n"
            "host:h\nx-custom:one two three,four\n\nhost;x-custom\nUNSIGNED-PAYLOAD");
}

// --- verification ----------------------------------------------------------------------------

const Credentials kOurs{"AKSLIPWAYTEST", "secret/with+odd=chars"};

SecretLookup Secrets() {
  return [](std::string_view ak) -> std::optional<std::string> {
    if (ak == kOurs.access_key) return kOurs.secret_key;
    return std::nullopt;
  };
}

system_clock::time_point Now() {
  return system_clock::time_point(std::chrono::seconds(1'700'000'000));
}

// An HttpRequest as the server would parse it from a URL and headers.
net::HttpRequest RequestFor(std::string method, std::string_view url, net::Headers headers) {
  net::HttpRequest r;
  r.method = std::move(method);
  std::string_view rest = url.substr(url.find("://") + 3);
  std::string_view host = rest.substr(0, rest.find('/'));
  r.target = std::string(rest.substr(host.size()));
  size_t q = r.target.find('?');
  r.path = r.target.substr(0, q);
  if (q != std::string::npos) r.query = r.target.substr(q + 1);
  r.headers = std::move(headers);
  if (!r.headers.Has("Host")) r.headers.Add("Host", std::string(host));
  return r;
}

net::HttpRequest SignedPut(system_clock::time_point when = Now(),
                           std::string_view region = "us-east-1") {
  std::string url = "http://127.0.0.1:9000/bucket/dir/my%20key.txt?uploadId=a%2Fb&partNumber=3";
  net::Headers h{{"Content-Type", "text/plain"}};
  SignRequest("PUT", url, h, Sha256Hex("hello"), kOurs, region, when);
  return RequestFor("PUT", url, h);
}

AuthError ErrorOf(const std::variant<VerifiedRequest, AuthFailure>& v) {
  EXPECT_TRUE(std::holds_alternative<AuthFailure>(v)) << "the request was accepted";
  if (auto* f = std::get_if<AuthFailure>(&v)) {
    EXPECT_FALSE(f->message.empty());
    return f->error;
  }
  return AuthError::kMissing;
}

TEST(SigV4VerifyTest, AcceptsWhatSignRequestProduces) {
  auto req = SignedPut();
  auto v = VerifyRequest(req, Secrets(), "us-east-1", Now() + std::chrono::minutes(14));
  ASSERT_TRUE(std::holds_alternative<VerifiedRequest>(v)) << std::get<AuthFailure>(v).message;
  const auto& ok = std::get<VerifiedRequest>(v);
  EXPECT_EQ(ok.access_key, kOurs.access_key);
  EXPECT_EQ(ok.payload_hash, Sha256Hex("hello"));
  EXPECT_EQ(ok.amz_date, FormatAmzDate(Now()));
  EXPECT_EQ(ok.scope, CredentialScope(FormatAmzDate(Now()).substr(0, 8), "us-east-1"));
  EXPECT_EQ(ok.signing_key,
            SigningKey(kOurs.secret_key, FormatAmzDate(Now()).substr(0, 8), "us-east-1"));
  EXPECT_EQ(ok.seed_signature.size(), 64u);
  EXPECT_NE(req.headers.GetOr("Authorization", "").find(ok.seed_signature), std::string::npos);
  EXPECT_FALSE(ok.presigned);
}

TEST(SigV4VerifyTest, AcceptsDateHeaderInsteadOfAmzDate) {
  // Signed by hand, as a client that only sends Date would.
  auto req = RequestFor("GET", "http://h/b/k",
                        {{"Host", "h"},
                         {"Date", FormatHttpDate(Now())},
                         {"x-amz-content-sha256", std::string(kEmptySha256)}});
  CanonicalRequestInput in{"GET",       "/b/k",           "",
                           req.headers, {"date", "host"}, std::string(kEmptySha256)};
  std::string date8 = FormatAmzDate(Now()).substr(0, 8);
  std::string scope = CredentialScope(date8, "us-east-1");
  std::string sig = Sign(SigningKey(kOurs.secret_key, date8, "us-east-1"),
                         StringToSign(FormatAmzDate(Now()), scope, CanonicalRequest(in)));
  req.headers.Add("Authorization", "AWS4-HMAC-SHA256 Credential=" + kOurs.access_key + "/" + scope +
                                       ",SignedHeaders=date;host,Signature=" + sig);
  auto v = VerifyRequest(req, Secrets(), "us-east-1", Now());
  ASSERT_TRUE(std::holds_alternative<VerifiedRequest>(v)) << std::get<AuthFailure>(v).message;
}

TEST(SigV4VerifyTest, RefusesTamperedSignature) {
  auto req = SignedPut();
  std::string auth = req.headers.GetOr("Authorization", "");
  char& last = auth.back();
  last = last == '0' ? '1' : '0';
  req.headers.Set("Authorization", auth);
  EXPECT_EQ(ErrorOf(VerifyRequest(req, Secrets(), "us-east-1", Now())),
            AuthError::kSignatureMismatch);
}

TEST(SigV4VerifyTest, RefusesTamperedPathQueryOrSignedHeader) {
  auto path = SignedPut();
  path.path = "/bucket/dir/other.txt";
  EXPECT_EQ(ErrorOf(VerifyRequest(path, Secrets(), "us-east-1", Now())),
            AuthError::kSignatureMismatch);
  auto query = SignedPut();
  query.query = "uploadId=a%2Fb&partNumber=4";
  EXPECT_EQ(ErrorOf(VerifyRequest(query, Secrets(), "us-east-1", Now())),
            AuthError::kSignatureMismatch);
  auto header = SignedPut();
  header.headers.Set("Content-Type", "text/html");
  EXPECT_EQ(ErrorOf(VerifyRequest(header, Secrets(), "us-east-1", Now())),
            AuthError::kSignatureMismatch);
  auto payload = SignedPut();
  payload.headers.Set("x-amz-content-sha256", std::string(kUnsignedPayload));
  EXPECT_EQ(ErrorOf(VerifyRequest(payload, Secrets(), "us-east-1", Now())),
            AuthError::kSignatureMismatch);
}

TEST(SigV4VerifyTest, RefusesSkewedClock) {
  auto req = SignedPut(Now() - std::chrono::minutes(16));
  EXPECT_EQ(ErrorOf(VerifyRequest(req, Secrets(), "us-east-1", Now())), AuthError::kSkewed);
  auto future = SignedPut(Now() + std::chrono::minutes(16));
  EXPECT_EQ(ErrorOf(VerifyRequest(future, Secrets(), "us-east-1", Now())), AuthError::kSkewed);
}

TEST(SigV4VerifyTest, RefusesWrongRegion) {
  auto req = SignedPut(Now(), "eu-west-1");
  EXPECT_EQ(ErrorOf(VerifyRequest(req, Secrets(), "us-east-1", Now())), AuthError::kWrongRegion);
}

TEST(SigV4VerifyTest, RefusesUnknownAccessKey) {
  std::string url = "http://127.0.0.1:9000/bucket/k";
  net::Headers h;
  SignRequest("GET", url, h, kEmptySha256, {"AKNOBODY", "x"}, "us-east-1", Now());
  EXPECT_EQ(ErrorOf(VerifyRequest(RequestFor("GET", url, h), Secrets(), "us-east-1", Now())),
            AuthError::kUnknownAccessKey);
}

TEST(SigV4VerifyTest, RefusesMalformedOrMissingAuth) {
  auto no_sig = SignedPut();
  std::string auth = no_sig.headers.GetOr("Authorization", "");
  no_sig.headers.Set("Authorization", auth.substr(0, auth.find(", Signature=")));
  EXPECT_EQ(ErrorOf(VerifyRequest(no_sig, Secrets(), "us-east-1", Now())), AuthError::kMalformed);

  auto v2 = SignedPut();
  v2.headers.Set("Authorization", "AWS AKSLIPWAYTEST:c2lnbmF0dXJl");
  EXPECT_EQ(ErrorOf(VerifyRequest(v2, Secrets(), "us-east-1", Now())), AuthError::kMalformed);

  auto bad_scope = SignedPut();
  bad_scope.headers.Set("Authorization",
                        "AWS4-HMAC-SHA256 Credential=AKSLIPWAYTEST/20231114/us-east-1/s3, "
                        "SignedHeaders=host, Signature=00");
  EXPECT_EQ(ErrorOf(VerifyRequest(bad_scope, Secrets(), "us-east-1", Now())),
            AuthError::kMalformed);

  auto no_date = SignedPut();
  no_date.headers.Remove("x-amz-date");
  EXPECT_EQ(ErrorOf(VerifyRequest(no_date, Secrets(), "us-east-1", Now())), AuthError::kMalformed);

  auto no_hash = SignedPut();
  no_hash.headers.Remove("x-amz-content-sha256");
  EXPECT_EQ(ErrorOf(VerifyRequest(no_hash, Secrets(), "us-east-1", Now())), AuthError::kMalformed);

  auto unsigned_req = RequestFor("GET", "http://h/b/k", {});
  EXPECT_EQ(ErrorOf(VerifyRequest(unsigned_req, Secrets(), "us-east-1", Now())),
            AuthError::kMissing);
}

// Found by fuzz/sigv4_fuzz.cc: a date whose year a system_clock::time_point cannot hold (it
// counts nanoseconds in 64 bits: 1677 to 2262) overflowed in the conversion (undefined
// behaviour) instead of being refused as malformed.
TEST(SigV4VerifyTest, DatesOutsideTheRepresentableYearsAreMalformedNotOverflowed) {
  system_clock::time_point t;
  EXPECT_FALSE(ParseHttpDate("Fri, 24 May 1006 00:00:00 GMT", &t));
  EXPECT_FALSE(ParseHttpDate("Fri, 24 May 9999 00:00:00 GMT", &t));
  EXPECT_FALSE(ParseAmzDate("10060524T000000Z", &t));
  EXPECT_FALSE(ParseAmzDate("99990524T000000Z", &t));
  EXPECT_FALSE(ParseAmzDate("20130024T000000Z", &t));  // month 0
  EXPECT_TRUE(ParseHttpDate("Fri, 24 May 2013 00:00:00 GMT", &t));
  EXPECT_TRUE(ParseAmzDate("20130524T000000Z", &t));

  auto old_date = SignedPut();
  old_date.headers.Remove("x-amz-date");
  old_date.headers.Set("Date", "Fri, 24 May 1006 00:00:00 GMT");
  EXPECT_EQ(ErrorOf(VerifyRequest(old_date, Secrets(), "us-east-1", Now())), AuthError::kMalformed);
  auto old_amz_date = SignedPut();
  old_amz_date.headers.Set("x-amz-date", "10060524T000000Z");
  EXPECT_EQ(ErrorOf(VerifyRequest(old_amz_date, Secrets(), "us-east-1", Now())),
            AuthError::kMalformed);
}

// --- presigned URLs ----------------------------------------------------------------------------

TEST(SigV4VerifyTest, AcceptsPresignedUrlWithinItsLifetime) {
  std::string url = Presign("PUT", "http://127.0.0.1:9000/bucket/contexts/p/abc.tar.gz", kOurs,
                            "us-east-1", Now(), std::chrono::minutes(15));
  auto req = RequestFor("PUT", url, {});
  auto v = VerifyRequest(req, Secrets(), "us-east-1", Now() + std::chrono::minutes(15));
  ASSERT_TRUE(std::holds_alternative<VerifiedRequest>(v)) << std::get<AuthFailure>(v).message;
  EXPECT_TRUE(std::get<VerifiedRequest>(v).presigned);
  EXPECT_EQ(std::get<VerifiedRequest>(v).payload_hash, kUnsignedPayload);
}

TEST(SigV4VerifyTest, PresignedUrlKeepsExistingQueryAndExtraSignedHeaders) {
  std::string url =
      Presign("GET", "http://127.0.0.1:9000/bucket/k?response-content-type=a%2Fb", kOurs,
              "us-east-1", Now(), std::chrono::seconds(60), {{"Content-Type", "application/gzip"}});
  EXPECT_NE(url.find("X-Amz-SignedHeaders=content-type%3Bhost"), std::string::npos) << url;
  auto ok = RequestFor("GET", url, {{"Content-Type", "application/gzip"}});
  EXPECT_TRUE(
      std::holds_alternative<VerifiedRequest>(VerifyRequest(ok, Secrets(), "us-east-1", Now())));
  auto other_type = RequestFor("GET", url, {{"Content-Type", "text/plain"}});
  EXPECT_EQ(ErrorOf(VerifyRequest(other_type, Secrets(), "us-east-1", Now())),
            AuthError::kSignatureMismatch);
}

TEST(SigV4VerifyTest, RefusesExpiredOrNotYetValidPresignedUrl) {
  std::string url = Presign("GET", "http://127.0.0.1:9000/bucket/k", kOurs, "us-east-1", Now(),
                            std::chrono::minutes(15));
  auto req = RequestFor("GET", url, {});
  EXPECT_EQ(ErrorOf(VerifyRequest(req, Secrets(), "us-east-1",
                                  Now() + std::chrono::minutes(15) + std::chrono::seconds(1))),
            AuthError::kExpired);
  EXPECT_EQ(ErrorOf(VerifyRequest(req, Secrets(), "us-east-1", Now() - std::chrono::minutes(16))),
            AuthError::kExpired);
}

TEST(SigV4VerifyTest, RefusesTamperedPresignedUrl) {
  std::string url = Presign("GET", "http://127.0.0.1:9000/bucket/k", kOurs, "us-east-1", Now(),
                            std::chrono::minutes(15));
  auto other_key = RequestFor("GET", url, {});
  other_key.path = "/bucket/k2";
  EXPECT_EQ(ErrorOf(VerifyRequest(other_key, Secrets(), "us-east-1", Now())),
            AuthError::kSignatureMismatch);
  auto longer = RequestFor("GET", url, {});
  size_t pos = longer.query.find("X-Amz-Expires=900");
  ASSERT_NE(pos, std::string::npos);
  longer.query.replace(pos, 17, "X-Amz-Expires=9000");
  EXPECT_EQ(ErrorOf(VerifyRequest(longer, Secrets(), "us-east-1", Now())),
            AuthError::kSignatureMismatch);
  auto put = RequestFor("PUT", url, {});
  EXPECT_EQ(ErrorOf(VerifyRequest(put, Secrets(), "us-east-1", Now())),
            AuthError::kSignatureMismatch);
}

TEST(SigV4VerifyTest, RefusesMalformedPresignedUrl) {
  std::string url = Presign("GET", "http://127.0.0.1:9000/bucket/k", kOurs, "us-east-1", Now(),
                            std::chrono::minutes(15));
  auto too_long = RequestFor("GET", url, {});
  size_t pos = too_long.query.find("X-Amz-Expires=900");
  too_long.query.replace(pos, 17, "X-Amz-Expires=604801");
  EXPECT_EQ(ErrorOf(VerifyRequest(too_long, Secrets(), "us-east-1", Now())), AuthError::kMalformed);

  auto no_sig = RequestFor("GET", url.substr(0, url.find("&X-Amz-Signature")), {});
  EXPECT_EQ(ErrorOf(VerifyRequest(no_sig, Secrets(), "us-east-1", Now())), AuthError::kMalformed);

  auto both = RequestFor("GET", url, {{"Authorization", "AWS4-HMAC-SHA256 Credential=x"}});
  EXPECT_EQ(ErrorOf(VerifyRequest(both, Secrets(), "us-east-1", Now())), AuthError::kMalformed);

  std::string eu = Presign("GET", "http://127.0.0.1:9000/bucket/k", kOurs, "eu-west-1", Now(),
                           std::chrono::minutes(15));
  EXPECT_EQ(ErrorOf(VerifyRequest(RequestFor("GET", eu, {}), Secrets(), "us-east-1", Now())),
            AuthError::kWrongRegion);
}

}  // namespace
}  // namespace slipway::storage
