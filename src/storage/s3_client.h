// A client for S3-compatible object stores (AWS S3, our embedded store, MinIO, s3rver), over
// net::HttpClient with SigV4. Path-style addressing always ("http://host:port/bucket/key"), so
// any endpoint works without DNS for bucket subdomains.
//
// Uploads sign the payload: the file's SHA-256 is computed by streaming it once before the
// request (then the file is streamed again as the body), so the store verifies every byte
// it receives against the signature. Files above multipart_threshold go up in parts of
// part_size, each read into memory once (memory use is bounded by one part), with an abort of
// the upload when any step fails.
//
// Errors: S3's XML error bodies become a Status whose message names the S3 code:
// NoSuchKey / NoSuchBucket / NoSuchUpload -> NotFound; AccessDenied, SignatureDoesNotMatch,
// InvalidAccessKeyId, AuthorizationHeaderMalformed -> PermissionDenied; EntityTooLarge ->
// ResourceExhausted; BucketAlreadyOwnedByYou / BucketAlreadyExists -> AlreadyExists;
// BucketNotEmpty, RequestTimeTooSkewed -> FailedPrecondition; BadDigest,
// XAmzContentSHA256Mismatch -> DataLoss; InvalidRange -> OutOfRange; NotImplemented ->
// Unimplemented; other 4xx -> InvalidArgument; 5xx (InternalError, SlowDown) -> Unavailable.
//
// Object metadata, put options and list pages are the object store's own types
// (storage/object_store.h): ObjectInfo, PutOptions (content type, x-amz-meta-*, Content-MD5),
// ListOptions and ListResult.
//
// Thread-safe: one S3Client may be used from many threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "storage/object_store.h"
#include "storage/sigv4.h"

namespace slipway::net {
class HttpClient;
}

namespace slipway::storage {

struct S3ClientOptions {
  std::string endpoint;         // "http://127.0.0.1:9000": where this process reaches the store
  std::string public_endpoint;  // where presigned URLs point (other machines); empty = endpoint
  std::string region = "us-east-1";
  Credentials credentials;
  uint64_t multipart_threshold = 64ull * 1024 * 1024;  // PutObject of larger files goes multipart
  uint64_t part_size = 16ull * 1024 * 1024;            // S3 wants >= 5 MiB but for the last part
  std::chrono::milliseconds request_timeout{0};        // whole request; 0 = none
  Clock* clock = nullptr;                              // signing time; nullptr = SystemClock()
};

struct CompletedUploadPart {
  int part_number = 0;
  std::string etag;
};

class S3Client {
 public:
  explicit S3Client(S3ClientOptions options);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  const S3ClientOptions& options() const { return options_; }

  Status CreateBucket(std::string_view bucket);

  // Uploads a file (multipart above options().multipart_threshold); returns the ETag.
  Result<std::string> PutObject(std::string_view bucket, std::string_view key,
                                const std::string& file_path, const PutOptions& put = {});
  // Uploads bytes already in memory (small objects); returns the ETag.
  Result<std::string> PutObjectData(std::string_view bucket, std::string_view key,
                                    std::string_view data, const PutOptions& put = {});

  // Downloads to file_path (written under a temporary name, renamed when complete).
  // ObjectInfo carries size, ETag, Last-Modified, Content-Type and x-amz-meta-* metadata.
  Result<ObjectInfo> GetObject(std::string_view bucket, std::string_view key,
                               const std::string& file_path);
  Result<ObjectInfo> HeadObject(std::string_view bucket, std::string_view key);
  // Succeeds when the key does not exist, as S3 does.
  Status DeleteObject(std::string_view bucket, std::string_view key);
  // One page; pass the previous page's next_continuation_token to get the next.
  Result<ListResult> ListObjectsV2(std::string_view bucket, const ListOptions& list = {});

  // The multipart steps PutObject uses, for callers that produce parts themselves.
  Result<std::string> CreateMultipartUpload(std::string_view bucket, std::string_view key,
                                            const PutOptions& put = {});
  Result<std::string> UploadPart(std::string_view bucket, std::string_view key,
                                 std::string_view upload_id, int part_number,
                                 std::string_view data);
  Result<std::string> CompleteMultipartUpload(std::string_view bucket, std::string_view key,
                                              std::string_view upload_id,
                                              const std::vector<CompletedUploadPart>& parts);
  Status AbortMultipartUpload(std::string_view bucket, std::string_view key,
                              std::string_view upload_id);

  // Presigned URLs on the public endpoint, valid for `expires` (at most 7 days). A PUT URL is
  // used with a plain HTTP PUT of the bytes; with content_type set, the uploader must send
  // exactly that Content-Type (it is signed); with content_length set, exactly that many bytes
  // (Content-Length is signed: the URL cannot store a bigger object than was asked for).
  std::string PresignPut(std::string_view bucket, std::string_view key,
                         std::chrono::seconds expires = std::chrono::minutes(15),
                         std::string_view content_type = "",
                         std::optional<uint64_t> content_length = std::nullopt) const;
  // A presigned PUT bound to one content: its SHA-256 (lower-case hex) and size are signed into
  // the URL as the x-amz-checksum-sha256 and Content-Length headers, which the uploader sends
  // as given in `headers`. The store (S3 or ours) refuses a body with another SHA-256 (400
  // BadDigest) and stores nothing; a PUT without the header fails its signature.
  struct ContentBoundPut {
    std::string url;
    net::Headers headers;  // to send with the PUT, values exactly as given
  };
  ContentBoundPut PresignContentPut(std::string_view bucket, std::string_view key,
                                    std::chrono::seconds expires, std::string_view sha256_hex,
                                    uint64_t content_length) const;
  // With response_content_type set, the GET answers with that Content-Type (S3's
  // response-content-type override, signed into the URL) whatever the object was stored with.
  std::string PresignGet(std::string_view bucket, std::string_view key,
                         std::chrono::seconds expires = std::chrono::minutes(15),
                         std::string_view response_content_type = "") const;

 private:
  Result<std::string> PutMultipart(std::string_view bucket, std::string_view key,
                                   const std::string& file_path, uint64_t size,
                                   const PutOptions& put);
  std::chrono::system_clock::time_point Now() const;

  S3ClientOptions options_;
  std::unique_ptr<net::HttpClient> http_;
};

// The Status for a failed S3 response: the S3 error code from the XML body (or the HTTP
// status when there is none, as for HEAD) mapped as described at the top of this file.
// `operation` names what was attempted: "GET s3://bucket/key".
Status StatusFromS3Error(int http_status, std::string_view body, std::string_view operation);

}  // namespace slipway::storage
