// aws-chunked body decoding. Input: three selector bytes (encoding, declared trailer, size of
// the pieces the byte source hands out), a line with x-amz-decoded-content-length (empty: not
// sent), then the raw body. Any body ends in decoded bytes or one of the errors the header
// promises, never a crash; a body that decodes meets its declared length.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fuzz_input.h"
#include "storage/aws_chunked.h"

namespace {

using namespace slipway;

// The request of AWS's "Transferring Payload in Multiple Chunks" example, so the seed made of
// that example's body verifies.
storage::VerifiedRequest ExampleAuth(std::string_view content_sha256) {
  storage::VerifiedRequest v;
  v.access_key = "AKIAIOSFODNN7EXAMPLE";
  v.payload_hash = std::string(content_sha256);
  v.amz_date = "20130524T000000Z";
  v.scope = storage::CredentialScope("20130524", "us-east-1");
  v.signing_key =
      storage::SigningKey("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1");
  v.seed_signature = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
  return v;
}

bool IsPromisedError(Code code) {
  return code == Code::kPermissionDenied || code == Code::kDataLoss ||
         code == Code::kInvalidArgument || code == Code::kUnimplemented;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  static constexpr std::string_view kEncodings[] = {
      storage::kStreamingSigned, storage::kStreamingSignedTrailer,
      storage::kStreamingUnsignedTrailer, "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"};
  static constexpr std::string_view kTrailers[] = {
      "", "x-amz-checksum-crc32", "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme",
      "x-amz-checksum-sha1", "x-amz-checksum-sha256", "x-amz-checksum-md5"};
  uint8_t encoding = in.Byte();
  uint8_t trailer = in.Byte();
  size_t piece = 1 + in.Byte() % 64;
  if (piece == 64) piece = SIZE_MAX;
  std::string_view length_line = in.Line();
  std::string body(in.Rest());

  storage::AwsChunkedOptions options;
  options.content_sha256 = std::string(kEncodings[encoding % std::size(kEncodings)]);
  options.declared_trailer = std::string(kTrailers[trailer % std::size(kTrailers)]);
  if (!length_line.empty()) {
    uint64_t length = 0;
    for (char c : length_line.substr(0, 12)) length = length * 10 + static_cast<uint8_t>(c) % 10;
    options.decoded_content_length = length;
  }
  // A server always has the verified request (a signed body without it is a caller's bug);
  // the top bit leaves it out for the encodings that do not need it.
  bool is_signed = options.content_sha256 == storage::kStreamingSigned ||
                   options.content_sha256 == storage::kStreamingSignedTrailer;
  if (is_signed || (encoding & 0x80)) options.auth = ExampleAuth(options.content_sha256);

  size_t pos = 0;
  storage::ByteSource source = [&](char* buf, size_t n) -> Result<size_t> {
    size_t take = std::min({n, piece, body.size() - pos});
    std::memcpy(buf, body.data() + pos, take);
    pos += take;
    return take;
  };
  auto decoder = storage::AwsChunkedDecoder::Create(source, options);
  if (!decoder.ok()) {
    SLIPWAY_FUZZ_CHECK(IsPromisedError(decoder.status().code()));
    return 0;
  }
  char buf[4096];
  uint64_t decoded = 0;
  for (;;) {
    size_t want = 1 + (decoded % sizeof(buf));
    auto n = (*decoder)->Read(buf, want);
    if (!n.ok()) {
      SLIPWAY_FUZZ_CHECK(IsPromisedError(n.status().code()));
      // After an error every further call returns the same error.
      auto again = (*decoder)->Read(buf, sizeof(buf));
      SLIPWAY_FUZZ_CHECK(!again.ok() && again.status().code() == n.status().code());
      return 0;
    }
    SLIPWAY_FUZZ_CHECK(*n <= want);
    if (*n == 0) break;
    decoded += *n;
  }
  SLIPWAY_FUZZ_CHECK(decoded == (*decoder)->bytes_read());
  SLIPWAY_FUZZ_CHECK(decoded <= body.size());
  if (options.decoded_content_length) SLIPWAY_FUZZ_CHECK(decoded == *options.decoded_content_length);
  return 0;
}
