#include "storage/s3_metrics.h"

#include <gtest/gtest.h>

namespace slipway::storage {
namespace {

net::HttpRequest Request(std::string method, std::string target, net::Headers headers = {}) {
  net::HttpRequest r;
  r.method = std::move(method);
  r.target = target;
  size_t q = target.find('?');
  r.path = target.substr(0, q);
  r.query = q == std::string::npos ? "" : target.substr(q + 1);
  r.headers = std::move(headers);
  return r;
}

TEST(S3MetricsTest, RequestsAreNamedByTheirS3Operation) {
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"GET", "/", "ListBuckets"},
      {"PUT", "/b", "CreateBucket"},
      {"HEAD", "/b", "HeadBucket"},
      {"DELETE", "/b/", "DeleteBucket"},
      {"GET", "/b?list-type=2&prefix=x", "ListObjectsV2"},
      {"GET", "/b", "ListObjects"},
      {"GET", "/b?location", "GetBucketLocation"},
      {"GET", "/b?uploads", "ListMultipartUploads"},
      {"GET", "/b?versions", "ListObjectVersions"},
      {"POST", "/b?delete", "DeleteObjects"},
      {"GET", "/b?acl", "GetBucketAcl"},
      {"PUT", "/b/k/with/slashes", "PutObject"},
      {"GET", "/b/k", "GetObject"},
      {"HEAD", "/b/k", "HeadObject"},
      {"DELETE", "/b/k", "DeleteObject"},
      {"POST", "/b/k?uploads", "CreateMultipartUpload"},
      {"PUT", "/b/k?partNumber=1&uploadId=u", "UploadPart"},
      {"POST", "/b/k?uploadId=u", "CompleteMultipartUpload"},
      {"DELETE", "/b/k?uploadId=u", "AbortMultipartUpload"},
      {"GET", "/b/k?uploadId=u", "ListParts"},
      {"GET", "/b/k?tagging", "GetObjectTagging"},
      {"GET", "/b/k?attributes", "GetObjectAttributes"},
      {"PUT", "/b/k?attributes", "Unknown"},
      {"DELETE", "/b?tagging", "DeleteBucketTagging"},
      {"PUT", "/b/k?acl", "PutObjectAcl"},
      {"PATCH", "/b/k", "Unknown"},
      {"POST", "/", "Unknown"},
  };
  for (const auto& [method, target, operation] : cases) {
    EXPECT_EQ(S3OperationOf(Request(method, target)), operation) << method << " " << target;
  }
  EXPECT_EQ(S3OperationOf(Request("PUT", "/b/k", {{"x-amz-copy-source", "/b/j"}})), "CopyObject");
  EXPECT_EQ(S3OperationOf(Request("PUT", "/b/k?partNumber=2&uploadId=u",
                                  {{"x-amz-copy-source", "/b/j"}})),
            "UploadPartCopy");
}

TEST(S3MetricsTest, SignedRequestsAreToldFromAnonymousOnes) {
  EXPECT_FALSE(IsSignedRequest(Request("GET", "/metrics")));
  EXPECT_FALSE(IsSignedRequest(Request("GET", "/healthz?verbose=1")));
  EXPECT_TRUE(IsSignedRequest(Request("GET", "/metrics", {{"Authorization", "AWS4-HMAC-SHA256 x"}})));
  EXPECT_TRUE(IsSignedRequest(Request("GET", "/metrics?X-Amz-Signature=ab&X-Amz-Credential=c")));
  EXPECT_TRUE(IsSignedRequest(Request("GET", "/metrics?AWSAccessKeyId=a&Signature=s")));
}

}  // namespace
}  // namespace slipway::storage
