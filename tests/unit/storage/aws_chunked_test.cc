// aws-chunked decoding: AWS's published chunked-upload example byte for byte, the trailer
// encodings with each checksum, and every way a body can be wrong, read in awkward pieces.
#include "storage/aws_chunked.h"

#include <gtest/gtest.h>

#include <cstring>

#include "base/crypto.h"

namespace slipway::storage {
namespace {

constexpr std::string_view kDate = "20130524T000000Z";

// The request of AWS's "Transferring Payload in Multiple Chunks" example, as VerifyRequest
// would describe it.
VerifiedRequest AwsExampleAuth() {
  VerifiedRequest v;
  v.access_key = "AKIAIOSFODNN7EXAMPLE";
  v.payload_hash = std::string(kStreamingSigned);
  v.amz_date = std::string(kDate);
  v.scope = CredentialScope("20130524", "us-east-1");
  v.signing_key = SigningKey("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1");
  v.seed_signature = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
  return v;
}

// The example's body with the signatures AWS published for it.
std::string AwsExampleBody() {
  return "10000;chunk-signature="
         "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n" +
         std::string(65536, 'a') +
         "\r\n400;chunk-signature="
         "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n" +
         std::string(1024, 'a') +
         "\r\n0;chunk-signature="
         "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n";
}

// A source over a string that hands out at most `piece` bytes per call.
ByteSource StringSource(std::string data, size_t piece = SIZE_MAX) {
  auto state = std::make_shared<std::pair<std::string, size_t>>(std::move(data), 0);
  return [state, piece](char* buf, size_t n) -> Result<size_t> {
    auto& [s, pos] = *state;
    size_t take = std::min({n, piece, s.size() - pos});
    std::memcpy(buf, s.data() + pos, take);
    pos += take;
    return take;
  };
}

// Reads the decoder to its end in reads of `piece` bytes.
Result<std::string> DecodeAll(AwsChunkedDecoder& d, size_t piece = 8192) {
  std::string out;
  std::string buf(piece, '\0');
  while (true) {
    auto n = d.Read(buf.data(), buf.size());
    if (!n.ok()) return n.status();
    if (*n == 0) return out;
    out.append(buf.data(), *n);
  }
}

Result<std::string> Decode(std::string body, AwsChunkedOptions options,
                           size_t source_piece = SIZE_MAX, size_t read_piece = 8192) {
  SLIPWAY_ASSIGN_OR_RETURN(
      auto d,
      AwsChunkedDecoder::Create(StringSource(std::move(body), source_piece), std::move(options)));
  return DecodeAll(*d, read_piece);
}

AwsChunkedOptions ExampleOptions() {
  AwsChunkedOptions o;
  o.content_sha256 = std::string(kStreamingSigned);
  o.decoded_content_length = 66560;
  o.auth = AwsExampleAuth();
  return o;
}

TEST(AwsChunkedTest, DecodesAwsPublishedExample) {
  std::string body = AwsExampleBody();
  EXPECT_EQ(body.size(), 66824u);  // the example's Content-Length
  auto out = Decode(body, ExampleOptions());
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, std::string(66560, 'a'));
}

TEST(AwsChunkedTest, DecodesWithOneByteReadsFromTheSourceAndToTheCaller) {
  auto out = Decode(AwsExampleBody(), ExampleOptions(), /*source_piece=*/1, /*read_piece=*/1);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, std::string(66560, 'a'));
  auto odd = Decode(AwsExampleBody(), ExampleOptions(), /*source_piece=*/7, /*read_piece=*/1000);
  ASSERT_TRUE(odd.ok()) << odd.status().ToString();
  EXPECT_EQ(*odd, std::string(66560, 'a'));
}

TEST(AwsChunkedTest, RefusesTamperedChunkDataOrSignature) {
  std::string data = AwsExampleBody();
  data[100] = 'b';
  EXPECT_EQ(Decode(data, ExampleOptions()).status().code(), Code::kPermissionDenied);

  std::string sig = AwsExampleBody();
  size_t pos = sig.find("400;chunk-signature=") + 20;
  sig[pos] = sig[pos] == '0' ? '1' : '0';
  EXPECT_EQ(Decode(sig, ExampleOptions(), 1, 1).status().code(), Code::kPermissionDenied);

  // The chain starts at the request's own signature: another seed breaks the first chunk.
  auto other_seed = ExampleOptions();
  other_seed.auth->seed_signature[0] = '5';
  EXPECT_EQ(Decode(AwsExampleBody(), other_seed).status().code(), Code::kPermissionDenied);

  // A signed body whose final chunk carries no signature is malformed.
  std::string no_sig = AwsExampleBody();
  no_sig.replace(no_sig.find("0;chunk-signature=b6"), 2 + 16 + 64, "0");
  EXPECT_EQ(Decode(no_sig, ExampleOptions()).status().code(), Code::kInvalidArgument);
}

TEST(AwsChunkedTest, RefusesWrongDecodedLengthAndTruncatedBodies) {
  auto shorter = ExampleOptions();
  shorter.decoded_content_length = 66559;
  EXPECT_EQ(Decode(AwsExampleBody(), shorter).status().code(), Code::kInvalidArgument);
  auto longer = ExampleOptions();
  longer.decoded_content_length = 66561;
  EXPECT_EQ(Decode(AwsExampleBody(), longer).status().code(), Code::kInvalidArgument);

  std::string body = AwsExampleBody();
  for (size_t cut : {size_t{10}, size_t{66000}, body.size() - 40}) {
    auto r = Decode(body.substr(0, cut), ExampleOptions());
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << "cut at " << cut;
  }
  EXPECT_EQ(Decode("zz;chunk-signature=00\r\n", ExampleOptions()).status().code(),
            Code::kInvalidArgument);
}

TEST(AwsChunkedTest, ErrorsAreSticky) {
  auto d = AwsChunkedDecoder::Create(StringSource("nonsense\r\n"), ExampleOptions());
  ASSERT_TRUE(d.ok());
  char buf[16];
  auto first = (*d)->Read(buf, sizeof buf);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ((*d)->Read(buf, sizeof buf).status(), first.status());
}

// --- checksums
// ------------------------------------------------------------------------------------

std::string Checksum(ChecksumAlgorithm a, std::string_view data, size_t piece = SIZE_MAX) {
  PayloadChecksum c(a);
  for (size_t i = 0; i < data.size(); i += piece) c.Update(data.substr(i, piece));
  return c.FinishBase64();
}

std::string HexOfBase64(const std::string& b64) {
  std::string raw;
  EXPECT_TRUE(Base64Decode(b64, &raw));
  return HexEncode(raw);
}

TEST(AwsChunkedTest, ChecksumsMatchTheirStandardCheckValues) {
  // The catalogued check value of each CRC is its result over "123456789".
  EXPECT_EQ(HexOfBase64(Checksum(ChecksumAlgorithm::kCrc32, "123456789")), "cbf43926");
  EXPECT_EQ(HexOfBase64(Checksum(ChecksumAlgorithm::kCrc32c, "123456789", 2)), "e3069283");
  EXPECT_EQ(HexOfBase64(Checksum(ChecksumAlgorithm::kCrc64Nvme, "123456789", 4)),
            "ae8b14860a799888");
  EXPECT_EQ(HexOfBase64(Checksum(ChecksumAlgorithm::kSha1, "abc", 1)),
            "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(HexOfBase64(Checksum(ChecksumAlgorithm::kSha256, "")), std::string(kEmptySha256));
  // What the AWS CLI (botocore 1.43) sent as x-amz-checksum-crc32 for "hello world".
  EXPECT_EQ(Checksum(ChecksumAlgorithm::kCrc32, "hello world", 3), "DUoRhQ==");
  // S3's value for an empty object's CRC32 is "AAAAAA==".
  EXPECT_EQ(Checksum(ChecksumAlgorithm::kCrc32, ""), "AAAAAA==");
  EXPECT_EQ(ChecksumFromHeaderName("X-Amz-Checksum-CRC32C"), ChecksumAlgorithm::kCrc32c);
  EXPECT_EQ(ChecksumFromHeaderName("x-amz-checksum-md5"), std::nullopt);
}

TEST(AwsChunkedTest, FullObjectCrcsCombineFromTheParts) {
  std::string data;
  for (uint32_t i = 0; i < 300000; ++i) data += static_cast<char>((i * 7919u) >> 3);
  // Pieces of uneven sizes, one of them empty, as parts of an upload.
  const std::vector<size_t> cuts = {0, 1, 70001, 70001, 200000, data.size()};
  for (auto a : {ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c,
                 ChecksumAlgorithm::kCrc64Nvme}) {
    std::vector<std::string> sums;
    std::vector<uint64_t> sizes;
    for (size_t i = 0; i + 1 < cuts.size(); ++i) {
      sums.push_back(Checksum(a, std::string_view(data).substr(cuts[i], cuts[i + 1] - cuts[i])));
      sizes.push_back(cuts[i + 1] - cuts[i]);
    }
    EXPECT_EQ(FullObjectCrc(a, sums, sizes), Checksum(a, data)) << ChecksumAlgorithmName(a);
    EXPECT_EQ(FullObjectCrc(a, {sums[0]}, {sizes[0]}), sums[0]);
    EXPECT_EQ(FullObjectCrc(a, {"not base64!"}, {1}), std::nullopt);
    EXPECT_TRUE(IsCrcChecksum(a));
  }
  EXPECT_EQ(FullObjectCrc(ChecksumAlgorithm::kSha256, {Checksum(ChecksumAlgorithm::kSha256, "")},
                          {0}),
            std::nullopt);
  EXPECT_FALSE(IsCrcChecksum(ChecksumAlgorithm::kSha1));
}

TEST(AwsChunkedTest, CompositeChecksumIsTheChecksumOfThePartChecksums) {
  std::string a = Checksum(ChecksumAlgorithm::kSha256, "first part");
  std::string b = Checksum(ChecksumAlgorithm::kSha256, "second part");
  std::string raw_a, raw_b;
  ASSERT_TRUE(Base64Decode(a, &raw_a) && Base64Decode(b, &raw_b));
  Sha256Digest d = Sha256(raw_a + raw_b);
  std::string want = Base64Encode(std::string_view(reinterpret_cast<const char*>(d.data()), 32));
  EXPECT_EQ(CompositeChecksum(ChecksumAlgorithm::kSha256, {a, b}), want + "-2");
  // A CRC32 value where a SHA-256 belongs is refused, not hashed.
  EXPECT_EQ(CompositeChecksum(ChecksumAlgorithm::kSha256, {a, "AAAAAA=="}), std::nullopt);
  EXPECT_EQ(ChecksumFromAlgorithmName("crc64nvme"), ChecksumAlgorithm::kCrc64Nvme);
  EXPECT_EQ(ChecksumFromAlgorithmName("MD5"), std::nullopt);
  EXPECT_EQ(ChecksumElementName(ChecksumAlgorithm::kCrc32c), "ChecksumCRC32C");
}

// --- trailer encodings (built here the way the SDKs frame them) -------------------------------

struct Encoded {
  std::string body;
  std::string checksum;
};

// STREAMING-UNSIGNED-PAYLOAD-TRAILER: "<hex>\r\n<data>\r\n" chunks, "0\r\n", trailer, "\r\n".
Encoded UnsignedTrailerBody(std::string_view payload, ChecksumAlgorithm a, size_t chunk) {
  Encoded e;
  char hex[32];
  for (size_t i = 0; i < payload.size(); i += chunk) {
    std::string_view part = payload.substr(i, chunk);
    snprintf(hex, sizeof hex, "%zx", part.size());
    e.body += std::string(hex) + "\r\n" + std::string(part) + "\r\n";
  }
  e.checksum = Checksum(a, payload);
  e.body += "0\r\n" + std::string(ChecksumHeaderName(a)) + ":" + e.checksum + "\r\n\r\n";
  return e;
}

// STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER with the chunk and trailer signatures chained from
// auth.seed_signature.
Encoded SignedTrailerBody(std::string_view payload, ChecksumAlgorithm a, size_t chunk,
                          const VerifiedRequest& auth) {
  Encoded e;
  std::string prev = auth.seed_signature;
  auto add_chunk = [&](std::string_view part) {
    prev =
        Sign(auth.signing_key, ChunkStringToSign(auth.amz_date, auth.scope, prev, Sha256Hex(part)));
    char hex[32];
    snprintf(hex, sizeof hex, "%zx", part.size());
    e.body += std::string(hex) + ";chunk-signature=" + prev + "\r\n";
    if (!part.empty()) e.body += std::string(part) + "\r\n";
  };
  for (size_t i = 0; i < payload.size(); i += chunk) add_chunk(payload.substr(i, chunk));
  add_chunk("");
  e.checksum = Checksum(a, payload);
  std::string trailer = std::string(ChecksumHeaderName(a)) + ":" + e.checksum;
  std::string trailer_sig =
      Sign(auth.signing_key, TrailerStringToSign(auth.amz_date, auth.scope, prev, trailer + "\n"));
  e.body += trailer + "\r\nx-amz-trailer-signature:" + trailer_sig + "\r\n\r\n";
  return e;
}

std::string Payload() {
  std::string p;
  for (int i = 0; i < 100'000; ++i) p += static_cast<char>('A' + (i * 7) % 50);
  return p;
}

AwsChunkedOptions UnsignedOptions(ChecksumAlgorithm a, uint64_t size) {
  AwsChunkedOptions o;
  o.content_sha256 = std::string(kStreamingUnsignedTrailer);
  o.declared_trailer = std::string(ChecksumHeaderName(a));
  o.decoded_content_length = size;
  return o;
}

TEST(AwsChunkedTest, DecodesUnsignedPayloadWithEachTrailerChecksum) {
  std::string payload = Payload();
  for (auto a :
       {ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c, ChecksumAlgorithm::kCrc64Nvme,
        ChecksumAlgorithm::kSha1, ChecksumAlgorithm::kSha256}) {
    Encoded e = UnsignedTrailerBody(payload, a, 8192);
    auto d = AwsChunkedDecoder::Create(StringSource(e.body, 3), UnsignedOptions(a, payload.size()));
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    auto out = DecodeAll(**d, 1);
    ASSERT_TRUE(out.ok()) << ChecksumHeaderName(a) << ": " << out.status().ToString();
    EXPECT_EQ(*out, payload);
    EXPECT_EQ((*d)->bytes_read(), payload.size());
    EXPECT_EQ((*d)->trailers().GetOr(ChecksumHeaderName(a), ""), e.checksum);
  }
}

TEST(AwsChunkedTest, RefusesBadTrailerChecksum) {
  std::string payload = Payload();
  Encoded e = UnsignedTrailerBody(payload, ChecksumAlgorithm::kCrc32, 65536);
  std::string bad = e.body;
  bad[1000] ^= 1;  // the data, not the framing: only the checksum can tell
  auto r = Decode(bad, UnsignedOptions(ChecksumAlgorithm::kCrc32, payload.size()));
  EXPECT_EQ(r.status().code(), Code::kDataLoss) << r.status().ToString();
}

TEST(AwsChunkedTest, RefusesMissingOrUndeclaredTrailer) {
  std::string payload = "hello";
  Encoded e = UnsignedTrailerBody(payload, ChecksumAlgorithm::kCrc32c, 8192);
  // Declared crc32 but the body carries crc32c.
  EXPECT_EQ(Decode(e.body, UnsignedOptions(ChecksumAlgorithm::kCrc32, 5)).status().code(),
            Code::kInvalidArgument);
  // No trailer at all after the final chunk.
  EXPECT_EQ(Decode("5\r\nhello\r\n0\r\n\r\n", UnsignedOptions(ChecksumAlgorithm::kCrc32, 5))
                .status()
                .code(),
            Code::kInvalidArgument);
  auto bad_name = UnsignedOptions(ChecksumAlgorithm::kCrc32, 5);
  bad_name.declared_trailer = "x-amz-checksum-md5";
  EXPECT_EQ(AwsChunkedDecoder::Create(StringSource(""), bad_name).status().code(),
            Code::kInvalidArgument);
}

TEST(AwsChunkedTest, DecodesSignedPayloadWithSignedTrailer) {
  auto auth = AwsExampleAuth();
  auth.payload_hash = std::string(kStreamingSignedTrailer);
  std::string payload = Payload();
  Encoded e = SignedTrailerBody(payload, ChecksumAlgorithm::kCrc32c, 65536, auth);
  AwsChunkedOptions o;
  o.content_sha256 = std::string(kStreamingSignedTrailer);
  o.declared_trailer = "x-amz-checksum-crc32c";
  o.decoded_content_length = payload.size();
  o.auth = auth;
  auto out = Decode(e.body, o, 1, 5);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, payload);

  // A forged checksum (matching data the attacker substituted) fails the trailer signature.
  std::string forged = e.body;
  size_t pos = forged.find(e.checksum);
  forged[pos] = forged[pos] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Decode(forged, o).status().code(), Code::kPermissionDenied);

  std::string unsigned_trailer = e.body.substr(0, e.body.find("x-amz-trailer-signature")) + "\r\n";
  EXPECT_EQ(Decode(unsigned_trailer, o).status().code(), Code::kPermissionDenied);
}

TEST(AwsChunkedTest, CreateRefusesWhatItCannotDecode) {
  AwsChunkedOptions sigv4a;
  sigv4a.content_sha256 = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD";
  EXPECT_EQ(AwsChunkedDecoder::Create(StringSource(""), sigv4a).status().code(),
            Code::kUnimplemented);
  AwsChunkedOptions no_auth;
  no_auth.content_sha256 = std::string(kStreamingSigned);
  EXPECT_FALSE(AwsChunkedDecoder::Create(StringSource(""), no_auth).ok());
  EXPECT_TRUE(IsStreamingPayload("STREAMING-UNSIGNED-PAYLOAD-TRAILER"));
  EXPECT_FALSE(IsStreamingPayload("UNSIGNED-PAYLOAD"));
}

TEST(AwsChunkedTest, CreatesFromRequestHeadersAndBodyReader) {
  class StringBody : public net::BodyReader {
   public:
    explicit StringBody(std::string s) : s_(std::move(s)) {}
    Result<size_t> Read(char* buf, size_t n) override {
      size_t take = std::min(n, s_.size() - pos_);
      std::memcpy(buf, s_.data() + pos_, take);
      pos_ += take;
      return take;
    }
    uint64_t bytes_read() const override { return pos_; }

   private:
    std::string s_;
    size_t pos_ = 0;
  };
  StringBody body(AwsExampleBody());
  net::Headers headers{{"x-amz-content-sha256", std::string(kStreamingSigned)},
                       {"x-amz-decoded-content-length", "66560"},
                       {"Content-Encoding", "aws-chunked"}};
  auto d = AwsChunkedDecoder::Create(body, headers, AwsExampleAuth());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  auto all = DecodeAll(**d);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, std::string(66560, 'a'));

  net::Headers bad_length{{"x-amz-content-sha256", std::string(kStreamingSigned)},
                          {"x-amz-decoded-content-length", "12x"}};
  EXPECT_EQ(AwsChunkedDecoder::Create(body, bad_length, AwsExampleAuth()).status().code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace slipway::storage
