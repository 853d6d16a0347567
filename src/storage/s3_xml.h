// S3's XML on the wire: error bodies with their HTTP statuses, the result documents the
// embedded store sends (ListBuckets, ListObjectsV2, multipart, DeleteObjects), and a small
// hand parser for the two request documents it accepts (CompleteMultipartUpload, Delete).
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "storage/object_store.h"

namespace slipway::storage {

enum class S3ErrorCode {
  kAccessDenied,
  kAuthorizationHeaderMalformed,
  kAuthorizationQueryParametersError,
  kBadDigest,
  kBucketAlreadyOwnedByYou,
  kBucketNotEmpty,
  kEntityTooLarge,
  kEntityTooSmall,
  kIncompleteBody,
  kInternalError,
  kInvalidAccessKeyId,
  kInvalidArgument,
  kInvalidBucketName,
  kInvalidPart,
  kInvalidPartOrder,
  kInvalidRange,
  kInvalidRequest,
  kMalformedXML,
  kMethodNotAllowed,
  kMissingContentLength,
  kNoSuchBucket,
  kNoSuchKey,
  kNoSuchUpload,
  kNotImplemented,
  kRequestTimeTooSkewed,
  kSignatureDoesNotMatch,
  kXAmzContentSHA256Mismatch,
};

// "NoSuchKey"
std::string_view S3ErrorName(S3ErrorCode code);
// 404 for NoSuchKey, and so on, as S3 answers.
int S3ErrorStatus(S3ErrorCode code);

// Escapes &, <, >, " and ' for element text and attribute values.
std::string XmlEscape(std::string_view text);
// Undoes XmlEscape and numeric character references (&#NN; &#xHH;); false when malformed.
bool XmlUnescape(std::string_view text, std::string* out);

// <Error><Code>..</Code><Message>..</Message><Resource>..</Resource><RequestId>..</RequestId>
std::string ErrorXml(S3ErrorCode code, std::string_view message, std::string_view resource,
                     std::string_view request_id);

std::string ListBucketsXml(const std::vector<BucketInfo>& buckets, std::string_view owner_id);

struct ListObjectsV2Request {
  std::string bucket;
  ListOptions options;
  bool encoding_type_url = false;  // EncodingType=url: keys and prefixes percent-encoded
};
std::string ListObjectsV2Xml(const ListObjectsV2Request& request, const ListResult& result);

std::string InitiateMultipartUploadXml(std::string_view bucket, std::string_view key,
                                       std::string_view upload_id);
std::string CompleteMultipartUploadXml(std::string_view location, std::string_view bucket,
                                       std::string_view key, std::string_view etag);
std::string LocationConstraintXml(std::string_view region);

// The CompleteMultipartUpload request body: <Part><PartNumber>N</PartNumber><ETag>..</ETag>.
// InvalidArgument (S3's MalformedXML) when it cannot be read.
Result<std::vector<CompletedPart>> ParseCompleteMultipartUpload(std::string_view xml);

struct DeleteObjectsRequest {
  std::vector<std::string> keys;
  bool quiet = false;
};
// The DeleteObjects request body: <Delete><Quiet>..</Quiet><Object><Key>..</Key></Object>..
Result<DeleteObjectsRequest> ParseDeleteObjects(std::string_view xml);

struct DeleteObjectsFailure {
  std::string key;
  S3ErrorCode code;
  std::string message;
};
std::string DeleteResultXml(const std::vector<std::string>& deleted,
                            const std::vector<DeleteObjectsFailure>& failed);

}  // namespace slipway::storage
