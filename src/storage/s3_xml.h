// S3's XML on the wire: error bodies with their HTTP statuses, the result documents the
// embedded store sends (ListBuckets, ListObjectsV2, multipart, DeleteObjects), and a small
// hand parser for the two request documents it accepts (CompleteMultipartUpload, Delete).
// Pure functions; thread-safe.
#pragma once

#include <map>
#include <optional>
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
  kNoSuchVersion,
  kNotImplemented,
  kInvalidDigest,
  kInvalidPartNumber,
  kMetadataTooLarge,
  kPreconditionFailed,
  kInvalidBucketState,
  kInvalidTag,
  kNoSuchTagSet,
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

// next_token: set when the listing was cut at max-buckets; prefix: echoed when asked for.
std::string ListBucketsXml(const std::vector<BucketInfo>& buckets, std::string_view owner_id,
                           std::string_view next_token = "",
                           std::optional<std::string> prefix = std::nullopt);

struct ListObjectsV2Request {
  std::string bucket;
  ListOptions options;
  bool encoding_type_url = false;        // EncodingType=url: keys and prefixes percent-encoded
  bool continuation_token_sent = false;  // echoed, even empty, as S3 does
  std::string owner;                     // non-empty: each object's <Owner> (fetch-owner)
};
std::string ListObjectsV2Xml(const ListObjectsV2Request& request, const ListResult& result);

std::string InitiateMultipartUploadXml(std::string_view bucket, std::string_view key,
                                       std::string_view upload_id);
// With the object's ETag and, when it has one, its checksum (ChecksumCRC32 ..., ChecksumType).
std::string CompleteMultipartUploadXml(std::string_view location, std::string_view bucket,
                                       std::string_view key, const ObjectInfo& object);
std::string LocationConstraintXml(std::string_view region);

// The CompleteMultipartUpload request body: <Part><PartNumber>N</PartNumber><ETag>..</ETag>,
// with the part's <ChecksumCRC32> (etc.) when the client lists it.
// InvalidArgument (S3's MalformedXML) when it cannot be read.
Result<std::vector<CompletedPart>> ParseCompleteMultipartUpload(std::string_view xml);

struct DeleteObjectsRequest {
  std::vector<std::string> keys;
  std::vector<DeleteConditions> conditions;  // one per key: ETag, LastModifiedTime, Size
  bool quiet = false;
};
// The DeleteObjects request body: <Delete><Quiet>..</Quiet><Object><Key>..</Key></Object>..
Result<DeleteObjectsRequest> ParseDeleteObjects(std::string_view xml);

struct DeleteObjectsFailure {
  std::string key;
  S3ErrorCode code;
  std::string message;
};
// CopyObject's <CopyObjectResult> and UploadPartCopy's <CopyPartResult>.
std::string CopyResultXml(std::string_view root, const ObjectInfo& info);

struct ListPartsRequest {
  std::string bucket, key, upload_id, owner;
  int part_number_marker = 0;
  int max_parts = 1000;
};
std::string ListPartsXml(const ListPartsRequest& request, const ListPartsResult& result);

struct ListUploadsRequest {
  std::string bucket, owner;
  ListUploadsOptions options;
  bool encoding_type_url = false;
};
std::string ListMultipartUploadsXml(const ListUploadsRequest& request,
                                    const ListUploadsResult& result);

// ListObjectVersions of a bucket that never had versioning: every object is version "null".
std::string ListVersionsXml(const ListObjectsV2Request& request, const ListResult& result,
                            std::string_view key_marker, std::string_view owner);
// GetBucketVersioning of a bucket that never had versioning enabled.
std::string VersioningConfigurationXml();
// The one grant this store has: the owner's FULL_CONTROL.
std::string OwnerFullControlAclXml(std::string_view owner);

// <Tagging><TagSet><Tag><Key>..</Key><Value>..</Value></Tag>..</TagSet></Tagging>
std::string TaggingXml(const std::map<std::string, std::string>& tags);

// GetObjectAttributes: which attributes x-amz-object-attributes asked for, and the page of
// parts (ObjectParts) to list.
struct ObjectAttributesRequest {
  bool etag = false;
  bool checksum = false;
  bool object_parts = false;
  bool storage_class = false;
  bool object_size = false;
  int max_parts = 1000;
  int part_number_marker = 0;
};
std::string ObjectAttributesXml(const ObjectAttributesRequest& request, const ObjectInfo& info);
// The PutObjectTagging body; InvalidArgument (MalformedXML) when it cannot be read, AlreadyExists
// when a key is repeated (InvalidTag).
Result<std::map<std::string, std::string>> ParseTagging(std::string_view xml);

// "2013-05-24T00:00:00.000Z" (fraction optional); false when malformed.
bool ParseIso8601(std::string_view s, std::chrono::system_clock::time_point* out);

std::string DeleteResultXml(const std::vector<std::string>& deleted,
                            const std::vector<DeleteObjectsFailure>& failed);

}  // namespace slipway::storage
