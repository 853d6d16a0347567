// Decoding of S3's aws-chunked request bodies (Content-Encoding: aws-chunked), which current AWS
// SDKs and CLIs send for uploads, and the S3 additional checksums carried in their trailers.
//
// Supported x-amz-content-sha256 values:
//   STREAMING-AWS4-HMAC-SHA256-PAYLOAD          "<hex>;chunk-signature=<sig>\r\n<data>\r\n"...
//   STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER  the same, then trailers + x-amz-trailer-signature
//   STREAMING-UNSIGNED-PAYLOAD-TRAILER          "<hex>\r\n<data>\r\n"..., then trailers
// Each chunk signature is chained from the previous one, starting at the request's own
// signature (VerifiedRequest::seed_signature). SigV4a (ECDSA) streaming is not supported.
//
// Streaming promise: memory use is bounded (a 64 KiB read buffer plus the trailer lines); data
// is handed to the caller as it arrives, so a chunk's bytes are delivered before its signature
// (and the whole payload before its checksum and length) can be checked. Every check that
// fails does so before Read() would return 0: consumers must commit nothing (rename no file,
// record no object) until Read() has returned 0.
//
// Failures and the S3 error a server should answer with:
//   kPermissionDenied  a chunk or trailer signature does not match   -> SignatureDoesNotMatch (403)
//   kDataLoss          the trailing checksum does not match the data  -> BadDigest (400)
//   kInvalidArgument   malformed framing, early end, decoded length differs from
//                      x-amz-decoded-content-length, undeclared/missing trailer
//                                                                      -> InvalidArgument /
//                                                                         IncompleteBody (400)
//   kUnimplemented     an encoding or checksum algorithm we do not handle -> NotImplemented (501)
//   anything else      passed through from the byte source (timeouts, peer gone, too large).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "net/http.h"
#include "net/http_server.h"
#include "storage/sigv4.h"

namespace slipway::storage {

inline constexpr std::string_view kStreamingSigned = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
inline constexpr std::string_view kStreamingSignedTrailer =
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
inline constexpr std::string_view kStreamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

// True for every STREAMING-* value (including ones we refuse, such as SigV4a): the body is
// aws-chunked and must go through AwsChunkedDecoder, never be stored as is.
bool IsStreamingPayload(std::string_view content_sha256);

// --- checksums (x-amz-checksum-*) ---------------------------------------------------------------

enum class ChecksumAlgorithm { kCrc32, kCrc32c, kCrc64Nvme, kSha1, kSha256 };

// "x-amz-checksum-crc32c" (any case) -> kCrc32c; nullopt for other names.
std::optional<ChecksumAlgorithm> ChecksumFromHeaderName(std::string_view header_name);
// kCrc32c -> "x-amz-checksum-crc32c".
std::string_view ChecksumHeaderName(ChecksumAlgorithm algorithm);

// "CRC32" (any case), as x-amz-checksum-algorithm names them -> kCrc32; nullopt for others.
std::optional<ChecksumAlgorithm> ChecksumFromAlgorithmName(std::string_view name);
// kCrc64Nvme -> "CRC64NVME" (x-amz-checksum-algorithm, ListParts' ChecksumAlgorithm).
std::string_view ChecksumAlgorithmName(ChecksumAlgorithm algorithm);
// kCrc32 -> "ChecksumCRC32", the element S3's XML documents carry it in.
std::string ChecksumElementName(ChecksumAlgorithm algorithm);
// The CRCs, whose values over consecutive pieces combine into the value over the whole; S3
// offers FULL_OBJECT multipart checksums for these only.
bool IsCrcChecksum(ChecksumAlgorithm algorithm);

// The checksum of a multipart object, from its parts' checksums (base64, as stored):
//  - COMPOSITE: the algorithm over the concatenated binary part checksums, base64, then
//    "-<number of parts>";
//  - FULL_OBJECT (CRCs only): the CRC of the whole object, combined from each part's CRC and
//    size, with nothing appended.
// nullopt when a part checksum is not valid base64 of the algorithm's size.
std::optional<std::string> CompositeChecksum(ChecksumAlgorithm algorithm,
                                             const std::vector<std::string>& part_checksums);
std::optional<std::string> FullObjectCrc(ChecksumAlgorithm algorithm,
                                         const std::vector<std::string>& part_checksums,
                                         const std::vector<uint64_t>& part_sizes);

// An incremental checksum whose result is what S3 puts in x-amz-checksum-*: the base64 of the
// big-endian digest. Not thread-safe; one per stream.
class PayloadChecksum {
 public:
  explicit PayloadChecksum(ChecksumAlgorithm algorithm);
  ~PayloadChecksum();
  PayloadChecksum(const PayloadChecksum&) = delete;
  PayloadChecksum& operator=(const PayloadChecksum&) = delete;

  ChecksumAlgorithm algorithm() const { return algorithm_; }
  void Update(std::string_view data);
  // Finishes the checksum; Update must not be called afterwards.
  std::string FinishBase64();

 private:
  struct Digest;
  ChecksumAlgorithm algorithm_;
  uint64_t crc_ = 0;
  std::unique_ptr<Digest> digest_;  // SHA-1 / SHA-256 state
};

// --- the decoder
// ----------------------------------------------------------------------------------

// Fills buf with up to n bytes of the raw (encoded) body; 0 at its end.
using ByteSource = std::function<Result<size_t>(char* buf, size_t n)>;

struct AwsChunkedOptions {
  std::string content_sha256;                      // x-amz-content-sha256 (a STREAMING-* value)
  std::optional<uint64_t> decoded_content_length;  // x-amz-decoded-content-length
  std::string declared_trailer;                    // x-amz-trailer, e.g. "x-amz-checksum-crc32"
  // Required for the signed encodings: the verified request (signing key, scope, date, seed).
  std::optional<VerifiedRequest> auth;
};

// Reads the decoded payload from an aws-chunked body. Itself a net::BodyReader, so a handler
// can give it to whatever consumes a request body. Not thread-safe.
class AwsChunkedDecoder : public net::BodyReader {
 public:
  // InvalidArgument / Unimplemented when the options cannot describe a body we can decode
  // (unknown STREAMING-* value, a signed encoding without auth, an unknown x-amz-trailer).
  static Result<std::unique_ptr<AwsChunkedDecoder>> Create(ByteSource source,
                                                           AwsChunkedOptions options);
  // Convenience: the request headers and body of an aws-chunked upload, as a server has them.
  static Result<std::unique_ptr<AwsChunkedDecoder>> Create(net::BodyReader& body,
                                                           const net::Headers& request_headers,
                                                           std::optional<VerifiedRequest> auth);

  ~AwsChunkedDecoder() override;

  // Decoded bytes; 0 once the body has ended and every check (signatures, trailer checksum,
  // decoded length) has passed. After an error every further call returns the same error.
  Result<size_t> Read(char* buf, size_t n) override;
  uint64_t bytes_read() const override { return decoded_; }

  // The trailing headers received (x-amz-trailer-signature excluded); complete after Read()
  // has returned 0.
  const net::Headers& trailers() const { return trailers_; }

 private:
  AwsChunkedDecoder(ByteSource source, AwsChunkedOptions options);

  enum class State { kChunkHeader, kChunkData, kChunkEnd, kDone, kFailed };

  Status Fail(Status status);
  Result<bool> FillOrEnd();
  Status Refill();
  Status ReadLine(std::string* line);
  Status ParseChunkHeader(const std::string& line);
  Status FinishChunk();
  Status ReadTrailerAndFinish();
  Status CheckEnd();

  ByteSource source_;
  AwsChunkedOptions options_;
  bool signed_ = false;
  bool has_trailer_ = false;
  State state_ = State::kChunkHeader;
  Status error_;

  std::string buffer_;
  size_t buffer_pos_ = 0;  // next unread byte of buffer_
  size_t buffer_end_ = 0;  // end of the bytes the last read put in buffer_

  uint64_t chunk_remaining_ = 0;
  uint64_t chunk_size_ = 0;
  std::string chunk_signature_;
  std::string previous_signature_;
  std::unique_ptr<Sha256Stream> chunk_hash_;
  std::unique_ptr<PayloadChecksum> checksum_;
  uint64_t decoded_ = 0;
  net::Headers trailers_;
};

}  // namespace slipway::storage
