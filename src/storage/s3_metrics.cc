#include "storage/s3_metrics.h"

#include <charconv>
#include <map>

namespace slipway::storage {

std::string_view S3OperationName(S3Operation operation) {
  switch (operation) {
#define SLIPWAY_S3_OPERATION_NAME(name) \
  case S3Operation::k##name:            \
    return #name;
    SLIPWAY_S3_OPERATIONS(SLIPWAY_S3_OPERATION_NAME)
#undef SLIPWAY_S3_OPERATION_NAME
  }
  return "Unknown";
}

S3Operation RouteS3Request(const net::HttpRequest& request, bool has_bucket, bool has_key) {
  using Op = S3Operation;
  std::map<std::string, std::string> query;
  for (auto& [name, value] : net::ParseQuery(request.query)) query.emplace(name, value);
  auto has = [&](const char* name) { return query.count(name) > 0; };
  const std::string& m = request.method;
  auto by_method = [&m](Op get, Op put, Op del) {
    return m == "GET" ? get : m == "PUT" ? put : m == "DELETE" ? del : Op::kUnknown;
  };
  if (!has_bucket) return m == "GET" ? Op::kListBuckets : Op::kUnknown;
  if (!has_key) {
    if (has("acl")) return by_method(Op::kGetBucketAcl, Op::kPutBucketAcl, Op::kUnknown);
    if (has("tagging")) {
      return by_method(Op::kGetBucketTagging, Op::kPutBucketTagging, Op::kDeleteBucketTagging);
    }
    if (has("versioning")) {
      return by_method(Op::kGetBucketVersioning, Op::kPutBucketVersioning, Op::kUnknown);
    }
    if (m == "PUT") return Op::kCreateBucket;
    if (m == "HEAD") return Op::kHeadBucket;
    if (m == "DELETE") return Op::kDeleteBucket;
    if (m == "POST") return has("delete") ? Op::kDeleteObjects : Op::kUnknown;
    if (m != "GET") return Op::kUnknown;
    if (has("location")) return Op::kGetBucketLocation;
    if (has("uploads")) return Op::kListMultipartUploads;
    if (has("versions")) return Op::kListObjectVersions;
    return query["list-type"] == "2" ? Op::kListObjectsV2 : Op::kListObjects;
  }
  if (has("acl")) return by_method(Op::kGetObjectAcl, Op::kPutObjectAcl, Op::kUnknown);
  if (has("tagging")) {
    return by_method(Op::kGetObjectTagging, Op::kPutObjectTagging, Op::kDeleteObjectTagging);
  }
  if (has("attributes")) return m == "GET" ? Op::kGetObjectAttributes : Op::kUnknown;
  bool copy = request.headers.Has("x-amz-copy-source");
  if (m == "PUT" && has("uploadId")) return copy ? Op::kUploadPartCopy : Op::kUploadPart;
  if (m == "PUT") return copy ? Op::kCopyObject : Op::kPutObject;
  if (m == "POST" && has("uploads")) return Op::kCreateMultipartUpload;
  if (m == "POST" && has("uploadId")) return Op::kCompleteMultipartUpload;
  if (m == "DELETE" && has("uploadId")) return Op::kAbortMultipartUpload;
  if (m == "GET" && has("uploadId")) return Op::kListParts;
  if (m == "GET") return Op::kGetObject;
  if (m == "HEAD") return Op::kHeadObject;
  if (m == "DELETE") return Op::kDeleteObject;
  return Op::kUnknown;
}

std::string_view S3OperationOf(const net::HttpRequest& request) {
  std::string_view path = request.path;
  if (path.empty() || path[0] != '/') return "Unknown";
  path.remove_prefix(1);
  size_t slash = path.find('/');
  bool has_bucket = !path.empty() && slash != 0;
  bool has_key = slash != std::string_view::npos && slash + 1 < path.size();
  return S3OperationName(RouteS3Request(request, has_bucket, has_key));
}

bool IsSignedRequest(const net::HttpRequest& request) {
  if (request.headers.Has("Authorization")) return true;
  for (const auto& [name, value] : net::ParseQuery(request.query)) {
    if (name == "X-Amz-Signature" || name == "X-Amz-Credential" || name == "Signature" ||
        name == "AWSAccessKeyId") {
      return true;
    }
  }
  return false;
}

S3Metrics::S3Metrics(metrics::Registry& registry)
    : requests_(registry.AddCounter("slipway_s3_requests_total",
                                    "Requests answered, by S3 operation and HTTP status",
                                    {"operation", "code"})),
      duration_(registry.AddHistogram("slipway_s3_request_duration_seconds",
                                      "Time from a request's arrival to the end of its response, "
                                      "by S3 operation",
                                      {"operation"})),
      received_(registry.AddCounter("slipway_s3_received_bytes_total",
                                    "Request body bytes read, by S3 operation", {"operation"})),
      sent_(registry.AddCounter("slipway_s3_sent_bytes_total",
                                "Response body bytes written, by S3 operation", {"operation"})) {}

void S3Metrics::RequestServed(std::string_view operation, int status, uint64_t bytes_in,
                              uint64_t bytes_out, double seconds) {
  char code[8];
  auto end = std::to_chars(code, code + sizeof code, status).ptr;
  requests_.With({operation, std::string_view(code, end - code)}).Increment();
  duration_.With({operation}).Observe(seconds);
  received_.With({operation}).Increment(static_cast<double>(bytes_in));
  sent_.With({operation}).Increment(static_cast<double>(bytes_out));
}

}  // namespace slipway::storage
