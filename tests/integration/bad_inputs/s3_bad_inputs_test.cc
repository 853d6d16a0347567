// Bad input at the object store, black-box against a `slipway run s3` process: requests that
// are properly signed (so the bad part is what is tested) but carry malformed XML, bad ranges,
// oversized headers, invalid keys, corrupt aws-chunked framing, signatures or trailers, or a
// wrong Content-MD5. Each case asserts what docs/bad-inputs.md promises: a clear error (the S3
// error code a client expects, with a message that is a sentence), nothing changed (the bucket
// lists exactly what it held before, the object already there keeps its bytes, no key was
// created), and no crash (the process runs and serves the next request).
#include <openssl/evp.h>
#include <signal.h>

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "base/crypto.h"
#include "integration/storage/s3_process.h"
#include "net/http.h"
#include "net/http_client.h"
#include "storage/aws_chunked.h"
#include "storage/sigv4.h"
#include "support/test_support.h"

namespace slipway::storage {
namespace {

constexpr std::string_view kBucket = "catalogue";
constexpr std::string_view kExistingKey = "existing.txt";
constexpr std::string_view kExistingBody = "0123456789";
constexpr std::string_view kRegion = "us-east-1";

// The raw 16-byte MD5 that Content-MD5 carries in base64.
std::string Md5(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<char*>(out), n);
}

struct Answer {
  int status = 0;
  net::Headers headers;
  std::string body;
  std::string code;     // <Code> of an S3 error body
  std::string message;  // <Message>
};

std::string XmlElement(const std::string& xml, std::string_view name) {
  std::string open = "<" + std::string(name) + ">";
  size_t start = xml.find(open);
  if (start == std::string::npos) return "";
  start += open.size();
  size_t end = xml.find("</" + std::string(name) + ">", start);
  return end == std::string::npos ? "" : xml.substr(start, end - start);
}

// One request to the store, signed with header auth unless the case gives its own
// Authorization; payload_hash defaults to the SHA-256 of the body.
struct S3Call {
  std::string method = "GET";
  std::string path_query;  // "/bucket/key?x=y", already encoded
  net::Headers headers;
  std::string body;
  std::optional<std::string> payload_hash;
  bool sign = true;
};

class S3BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    s3_ = new S3Process(dir_->path() / "s3");
    ASSERT_TRUE(s3_->ready()) << s3_->log();
    ASSERT_EQ(Call({"PUT", "/" + std::string(kBucket)}).status, 200) << s3_->log();
    ASSERT_EQ(Call({"PUT", ExistingPath(), {}, std::string(kExistingBody)}).status, 200);
  }
  static void TearDownTestSuite() {
    delete s3_;
    delete dir_;
  }

  static std::string ExistingPath() { return "/" + std::string(kBucket) + "/" + std::string(kExistingKey); }
  static std::string KeyPath(std::string_view key) { return "/" + std::string(kBucket) + "/" + std::string(key); }

  static Answer Call(S3Call call) {
    net::HttpClient client;
    net::ClientRequest request;
    request.method = call.method;
    request.url = s3_->endpoint() + call.path_query;
    request.headers = call.headers;
    request.body = call.body;
    request.max_attempts = 1;
    if (call.sign) {
      SignRequest(call.method, request.url, request.headers,
                  call.payload_hash ? *call.payload_hash : Sha256Hex(call.body),
                  Credentials{kAccessKey, kSecretKey}, kRegion, std::chrono::system_clock::now());
    }
    Answer out;
    auto response = client.Do(request);
    if (!response.ok()) {
      out.message = response.status().ToString();
      return out;
    }
    out.status = response->status;
    out.headers = response->headers;
    out.body = response->body;
    out.code = XmlElement(out.body, "Code");
    out.message = XmlElement(out.body, "Message");
    return out;
  }

  // Every key in the bucket.
  static std::set<std::string> Keys() {
    Answer listing = Call({"GET", "/" + std::string(kBucket) + "?list-type=2"});
    EXPECT_EQ(listing.status, 200) << listing.body;
    std::set<std::string> keys;
    size_t at = 0;
    while ((at = listing.body.find("<Key>", at)) != std::string::npos) {
      size_t end = listing.body.find("</Key>", at);
      keys.insert(listing.body.substr(at + 5, end - at - 5));
      at = end;
    }
    return keys;
  }

  // The three promises, after a call that must fail with `status` and `code`.
  static void ExpectRefusedAndNothingChanged(const Answer& answer, int status,
                                             std::string_view code) {
    EXPECT_EQ(answer.status, status) << answer.body;
    EXPECT_EQ(answer.code, code) << answer.body;
    // A sentence: several words, ending in a full stop.
    EXPECT_GE(answer.message.size(), 20u) << answer.body;
    EXPECT_NE(answer.message.find(' '), std::string::npos) << answer.body;
    EXPECT_EQ(Keys(), std::set<std::string>{std::string(kExistingKey)});
    Answer existing = Call({"GET", ExistingPath()});
    EXPECT_EQ(existing.status, 200);
    EXPECT_EQ(existing.body, kExistingBody);
    EXPECT_EQ(::kill(s3_->pid(), 0), 0) << "the store process is gone:\n" << s3_->log();
  }

  // An upload id for a multipart upload of `key`, with one part uploaded.
  static std::string StartMultipart(std::string_view key) {
    Answer started = Call({"POST", KeyPath(key) + "?uploads"});
    EXPECT_EQ(started.status, 200) << started.body;
    std::string id = XmlElement(started.body, "UploadId");
    Answer part = Call({"PUT", KeyPath(key) + "?partNumber=1&uploadId=" + net::UriEncode(id), {},
                        "part one"});
    EXPECT_EQ(part.status, 200) << part.body;
    return id;
  }

  // An aws-chunked body of `chunks`, signed from the seed signature of the request that
  // SignRequest produced for `headers`; corrupt_chunk >= 0 flips a byte of that chunk's data
  // after signing.
  static std::string SignedChunkedBody(const net::Headers& headers,
                                       const std::vector<std::string>& chunks, int corrupt_chunk) {
    std::string authorization(headers.GetOr("Authorization", ""));
    std::string seed = authorization.substr(authorization.find("Signature=") + 10);
    std::string amz_date(headers.GetOr("x-amz-date", ""));
    std::string date8 = amz_date.substr(0, 8);
    std::string scope = CredentialScope(date8, kRegion);
    Sha256Digest key = SigningKey(kSecretKey, date8, kRegion);
    std::string previous = seed, body;
    std::vector<std::string> all = chunks;
    all.push_back("");
    for (size_t i = 0; i < all.size(); ++i) {
      std::string signature =
          Sign(key, ChunkStringToSign(amz_date, scope, previous, Sha256Hex(all[i])));
      previous = signature;
      std::string data = all[i];
      if (static_cast<int>(i) == corrupt_chunk && !data.empty()) data[0] ^= 1;
      char hex[20];
      snprintf(hex, sizeof hex, "%zx", all[i].size());
      body += std::string(hex) + ";chunk-signature=" + signature + "\r\n" + data + "\r\n";
    }
    return body;
  }

  // A signed aws-chunked PUT of `chunks` to key, built by `finish` from the signed headers.
  static Answer ChunkedPut(std::string_view key, uint64_t decoded_length,
                           const std::function<std::string(const net::Headers&)>& body_of) {
    net::Headers headers{{"Content-Encoding", "aws-chunked"},
                         {"x-amz-decoded-content-length", std::to_string(decoded_length)}};
    std::string url = s3_->endpoint() + KeyPath(key);
    SignRequest("PUT", url, headers, kStreamingSigned, Credentials{kAccessKey, kSecretKey},
                kRegion, std::chrono::system_clock::now());
    return Call({"PUT", KeyPath(key), headers, body_of(headers), std::nullopt, /*sign=*/false});
  }

  static testing::TempDir* dir_;
  static S3Process* s3_;
};

testing::TempDir* S3BadInputTest::dir_ = nullptr;
S3Process* S3BadInputTest::s3_ = nullptr;

// --- malformed XML bodies -----------------------------------------------------------------------

TEST_F(S3BadInputTest, DeleteObjectsWithTruncatedXmlDeletesNothing) {
  std::string body = "<Delete><Object><Key>" + std::string(kExistingKey) + "</Key></Object>";
  Answer a = Call({"POST", "/" + std::string(kBucket) + "?delete",
                   {{"Content-MD5", Base64Encode(Md5(body))}}, body});
  ExpectRefusedAndNothingChanged(a, 400, "MalformedXML");
}

TEST_F(S3BadInputTest, DeleteObjectsWithABodyThatIsNotXmlDeletesNothing) {
  std::string body = "existing.txt\n";
  Answer a = Call({"POST", "/" + std::string(kBucket) + "?delete",
                   {{"Content-MD5", Base64Encode(Md5(body))}}, body});
  ExpectRefusedAndNothingChanged(a, 400, "MalformedXML");
}

TEST_F(S3BadInputTest, XmlWithAnEntityDeclarationIsRefusedNotExpanded) {
  std::string body =
      "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY k \"existing.txt\">]>"
      "<Delete><Object><Key>&k;</Key></Object></Delete>";
  Answer a = Call({"POST", "/" + std::string(kBucket) + "?delete",
                   {{"Content-MD5", Base64Encode(Md5(body))}}, body});
  ExpectRefusedAndNothingChanged(a, 400, "MalformedXML");
}

TEST_F(S3BadInputTest, CompleteMultipartWithMalformedXmlCreatesNoObject) {
  std::string id = StartMultipart("multi.bin");
  Answer a = Call({"POST", KeyPath("multi.bin") + "?uploadId=" + net::UriEncode(id), {},
                   "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"});
  ExpectRefusedAndNothingChanged(a, 400, "MalformedXML");
  (void)Call({"DELETE", KeyPath("multi.bin") + "?uploadId=" + net::UriEncode(id)});
}

TEST_F(S3BadInputTest, CompleteMultipartWithAPartNumberThatIsNotANumberCreatesNoObject) {
  std::string id = StartMultipart("multi2.bin");
  Answer a = Call({"POST", KeyPath("multi2.bin") + "?uploadId=" + net::UriEncode(id), {},
                   "<CompleteMultipartUpload><Part><PartNumber>one</PartNumber>"
                   "<ETag>\"x\"</ETag></Part></CompleteMultipartUpload>"});
  EXPECT_TRUE(a.code == "MalformedXML" || a.code == "InvalidPart") << a.body;
  ExpectRefusedAndNothingChanged(a, 400, a.code);
  (void)Call({"DELETE", KeyPath("multi2.bin") + "?uploadId=" + net::UriEncode(id)});
}

// --- ranges ---------------------------------------------------------------------------------------

TEST_F(S3BadInputTest, RangePastTheEndIsInvalidRange) {
  Answer a = Call({"GET", ExistingPath(), {{"Range", "bytes=100-200"}}});
  ExpectRefusedAndNothingChanged(a, 416, "InvalidRange");
}

// What HTTP says to ignore (a reversed range, several overlapping ranges, another unit) is
// ignored, as S3 does: the whole object, 200, no Content-Range.
TEST_F(S3BadInputTest, ReversedOverlappingAndForeignRangesGetTheWholeObject) {
  for (std::string range : {"bytes=5-2", "bytes=0-4,2-6", "bytes=0-1,0-1", "items=0-1", "bytes=x-y",
                            "bytes=--1"}) {
    Answer a = Call({"GET", ExistingPath(), {{"Range", range}}});
    EXPECT_EQ(a.status, 200) << range;
    EXPECT_EQ(a.body, kExistingBody) << range;
    EXPECT_FALSE(a.headers.Has("Content-Range")) << range;
  }
  EXPECT_EQ(Keys(), std::set<std::string>{std::string(kExistingKey)});
  EXPECT_EQ(::kill(s3_->pid(), 0), 0);
}

// --- oversized headers, invalid keys --------------------------------------------------------------

TEST_F(S3BadInputTest, OversizedHeaderSectionIs431AndStoresNothing) {
  net::Headers headers;
  for (int i = 0; i < 80; ++i) headers.Add("x-amz-meta-pad" + std::to_string(i), std::string(1000, 'p'));
  Answer a = Call({"PUT", KeyPath("big-headers.txt"), headers, "x"});
  EXPECT_EQ(a.status, 431) << a.body;
  EXPECT_NE(a.body.find("header"), std::string::npos) << a.body;
  EXPECT_EQ(Keys(), std::set<std::string>{std::string(kExistingKey)});
  EXPECT_EQ(::kill(s3_->pid(), 0), 0);
}

TEST_F(S3BadInputTest, UserMetadataOverTwoKilobytesIsMetadataTooLarge) {
  Answer a = Call({"PUT", KeyPath("meta.txt"), {{"x-amz-meta-big", std::string(2100, 'm')}}, "x"});
  ExpectRefusedAndNothingChanged(a, 400, "MetadataTooLarge");
}

TEST_F(S3BadInputTest, KeyLongerThan1024BytesIsKeyTooLong) {
  Answer a = Call({"PUT", KeyPath(std::string(1025, 'k')), {}, "x"});
  EXPECT_GE(a.status, 400);
  EXPECT_LT(a.status, 500);
  ExpectRefusedAndNothingChanged(a, a.status, a.code.empty() ? "?" : a.code);
  EXPECT_TRUE(a.code == "KeyTooLongError" || a.code == "InvalidArgument") << a.body;
}

TEST_F(S3BadInputTest, KeysThatCouldEscapeTheBucketAreRefused) {
  for (std::string key : {"..%2F..%2Fescape", "a/../../escape", "%00nul", "a/./b"}) {
    Answer a = Call({"PUT", KeyPath(key), {}, "x"});
    SCOPED_TRACE(key);
    EXPECT_GE(a.status, 400) << a.body;
    EXPECT_LT(a.status, 500) << a.body;
    EXPECT_FALSE(a.code.empty()) << a.body;
    ExpectRefusedAndNothingChanged(a, a.status, a.code);
  }
  EXPECT_FALSE(std::filesystem::exists(s3_->data() / "escape"));
  EXPECT_FALSE(std::filesystem::exists(s3_->data().parent_path() / "escape"));
}

TEST_F(S3BadInputTest, InvalidBucketNameIsRefused) {
  Answer a = Call({"PUT", "/Bad_Bucket..Name"});
  ExpectRefusedAndNothingChanged(a, 400, "InvalidBucketName");
}

// --- Content-MD5 and x-amz-content-sha256 ---------------------------------------------------------

TEST_F(S3BadInputTest, WrongContentMd5IsBadDigestAndStoresNothing) {
  Answer a = Call({"PUT", KeyPath("md5.txt"), {{"Content-MD5", Base64Encode(Md5("other"))}}, "body"});
  ExpectRefusedAndNothingChanged(a, 400, "BadDigest");
}

TEST_F(S3BadInputTest, ContentMd5ThatIsNotBase64OfSixteenBytesIsInvalidDigest) {
  Answer a = Call({"PUT", KeyPath("md5.txt"), {{"Content-MD5", "not base64!"}}, "body"});
  ExpectRefusedAndNothingChanged(a, 400, "InvalidDigest");
}

TEST_F(S3BadInputTest, WrongContentSha256IsMismatchAndStoresNothing) {
  Answer a = Call({"PUT", KeyPath("sha.txt"), {}, "body", Sha256Hex("other")});
  ExpectRefusedAndNothingChanged(a, 400, "XAmzContentSHA256Mismatch");
}

TEST_F(S3BadInputTest, OverwriteWithAWrongDigestKeepsTheOldBytes) {
  Answer a = Call({"PUT", ExistingPath(), {{"Content-MD5", Base64Encode(Md5("x"))}}, "new bytes"});
  ExpectRefusedAndNothingChanged(a, 400, "BadDigest");
}

// --- aws-chunked ------------------------------------------------------------------------------------

TEST_F(S3BadInputTest, AwsChunkedWithACorruptChunkIsSignatureDoesNotMatch) {
  Answer a = ChunkedPut("chunked.txt", 10, [](const net::Headers& h) {
    return SignedChunkedBody(h, {"01234", "56789"}, /*corrupt_chunk=*/1);
  });
  ExpectRefusedAndNothingChanged(a, 403, "SignatureDoesNotMatch");
}

TEST_F(S3BadInputTest, AwsChunkedWithAForgedChunkSignatureIsSignatureDoesNotMatch) {
  Answer a = ChunkedPut("chunked.txt", 5, [](const net::Headers& h) {
    std::string body = SignedChunkedBody(h, {"01234"}, -1);
    body[body.find("chunk-signature=") + 16] ^= 1;
    return body;
  });
  ExpectRefusedAndNothingChanged(a, 403, "SignatureDoesNotMatch");
}

TEST_F(S3BadInputTest, AwsChunkedShorterThanItsDecodedLengthStoresNothing) {
  Answer a = ChunkedPut("chunked.txt", 11, [](const net::Headers& h) {
    return SignedChunkedBody(h, {"01234", "56789"}, -1);
  });
  EXPECT_TRUE(a.code == "IncompleteBody" || a.code == "InvalidArgument") << a.body;
  ExpectRefusedAndNothingChanged(a, 400, a.code);
}

TEST_F(S3BadInputTest, AwsChunkedWithBrokenFramingStoresNothing) {
  Answer a = ChunkedPut("chunked.txt", 5, [](const net::Headers& h) {
    std::string body = SignedChunkedBody(h, {"01234"}, -1);
    return body.substr(0, body.find("\r\n")) + "\n" + body.substr(body.find("\r\n") + 2);
  });
  EXPECT_TRUE(a.code == "IncompleteBody" || a.code == "InvalidArgument") << a.body;
  ExpectRefusedAndNothingChanged(a, 400, a.code);
}

TEST_F(S3BadInputTest, UnsignedTrailerWithAWrongChecksumIsBadDigest) {
  std::string body =
      "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
  Answer a = Call({"PUT", KeyPath("trailer.txt"),
                   {{"Content-Encoding", "aws-chunked"},
                    {"x-amz-decoded-content-length", "5"},
                    {"x-amz-trailer", "x-amz-checksum-crc32"}},
                   body, std::string(kStreamingUnsignedTrailer)});
  ExpectRefusedAndNothingChanged(a, 400, "BadDigest");
}

TEST_F(S3BadInputTest, UnsignedTrailerThatWasNotDeclaredStoresNothing) {
  std::string body = "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n";
  Answer a = Call({"PUT", KeyPath("trailer.txt"),
                   {{"Content-Encoding", "aws-chunked"}, {"x-amz-decoded-content-length", "5"}},
                   body, std::string(kStreamingUnsignedTrailer)});
  // The body ends before it could be checked as declared: IncompleteBody, naming the trailer.
  EXPECT_TRUE(a.code == "IncompleteBody" || a.code == "InvalidArgument" ||
              a.code == "InvalidRequest")
      << a.body;
  ExpectRefusedAndNothingChanged(a, 400, a.code);
}

TEST_F(S3BadInputTest, UnsignedTrailerMissingItsDeclaredChecksumStoresNothing) {
  std::string body = "5\r\nhello\r\n0\r\n\r\n";
  Answer a = Call({"PUT", KeyPath("trailer.txt"),
                   {{"Content-Encoding", "aws-chunked"},
                    {"x-amz-decoded-content-length", "5"},
                    {"x-amz-trailer", "x-amz-checksum-crc32"}},
                   body, std::string(kStreamingUnsignedTrailer)});
  EXPECT_TRUE(a.code == "InvalidArgument" || a.code == "IncompleteBody" || a.code == "InvalidRequest")
      << a.body;
  ExpectRefusedAndNothingChanged(a, 400, a.code);
}

TEST_F(S3BadInputTest, UnsupportedStreamingEncodingIsNotImplemented) {
  Answer a = Call({"PUT", KeyPath("sigv4a.txt"),
                   {{"Content-Encoding", "aws-chunked"}, {"x-amz-decoded-content-length", "5"}},
                   "0\r\n\r\n", std::string("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD")});
  ExpectRefusedAndNothingChanged(a, 501, "NotImplemented");
}

TEST_F(S3BadInputTest, UnsignedRequestIsAccessDenied) {
  S3Call call{"PUT", KeyPath("anon.txt"), {}, "x"};
  call.sign = false;
  ExpectRefusedAndNothingChanged(Call(call), 403, "AccessDenied");
}

}  // namespace
}  // namespace slipway::storage
