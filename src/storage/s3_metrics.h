// What the embedded object store counts, and the operation names it counts them by:
//   slipway_s3_requests_total{operation,code}          requests, by S3 operation and HTTP status
//   slipway_s3_request_duration_seconds{operation}
//   slipway_s3_received_bytes_total{operation}         request body bytes read (PUT, parts, ...)
//   slipway_s3_sent_bytes_total{operation}             response body bytes written (GET, ...)
// Thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/metrics.h"
#include "net/http_server.h"

namespace slipway::storage {

// The S3 operations the store tells apart, by the names S3's API reference gives them.
#define SLIPWAY_S3_OPERATIONS(X)                                                               \
  X(ListBuckets) X(CreateBucket) X(HeadBucket) X(DeleteBucket) X(ListObjects) X(ListObjectsV2) \
  X(ListObjectVersions) X(GetBucketLocation) X(ListMultipartUploads) X(DeleteObjects)          \
  X(GetBucketAcl) X(PutBucketAcl) X(GetBucketTagging) X(PutBucketTagging)                       \
  X(DeleteBucketTagging) X(GetBucketVersioning) X(PutBucketVersioning) X(PutObject)             \
  X(CopyObject) X(GetObject) X(HeadObject) X(DeleteObject) X(GetObjectAcl) X(PutObjectAcl)      \
  X(GetObjectTagging) X(PutObjectTagging) X(DeleteObjectTagging) X(GetObjectAttributes)         \
  X(CreateMultipartUpload) X(UploadPart) X(UploadPartCopy) X(CompleteMultipartUpload)           \
  X(AbortMultipartUpload) X(ListParts) X(Unknown)

enum class S3Operation {
#define SLIPWAY_S3_OPERATION_ENUM(name) k##name,
  SLIPWAY_S3_OPERATIONS(SLIPWAY_S3_OPERATION_ENUM)
#undef SLIPWAY_S3_OPERATION_ENUM
};

// "PutObject" for kPutObject.
std::string_view S3OperationName(S3Operation operation);

// The S3 operation a request asks for, from its method, whether its path names a bucket and a
// key (as the server decoded it), its query and x-amz-copy-source; kUnknown for what is none
// (the store answers those with an error). The one routing table: the server dispatches by it
// and counts by it.
S3Operation RouteS3Request(const net::HttpRequest& request, bool has_bucket, bool has_key);
// The same, named, with the bucket and key read from the undecoded path (for metrics).
std::string_view S3OperationOf(const net::HttpRequest& request);

// True when the request carries a signature (an Authorization field, or a presigned URL's
// query). The store answers /healthz, /readyz and /metrics only to unsigned requests: a signed
// GET /metrics is ListObjects on a bucket named "metrics".
bool IsSignedRequest(const net::HttpRequest& request);

class S3Metrics {
 public:
  explicit S3Metrics(metrics::Registry& registry);
  void RequestServed(std::string_view operation, int status, uint64_t bytes_in,
                     uint64_t bytes_out, double seconds);

 private:
  metrics::CounterFamily& requests_;
  metrics::HistogramFamily& duration_;
  metrics::CounterFamily& received_;
  metrics::CounterFamily& sent_;
};

}  // namespace slipway::storage
