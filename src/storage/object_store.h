// The filesystem-backed object store behind `slipway run s3`: buckets, objects, listings and
// multipart uploads with S3's semantics, and no HTTP.
//
// Promises:
//  - An object appears whole or not at all. Bodies are streamed to a temp file under the data
//    directory, fsync'd, then rename()'d into place and the directory fsync'd. A reader that
//    fails midway (dropped connection, bad digest, crash) leaves no object and no temp file
//    visible; an object already under that key is unchanged. Temp files left by a crash are
//    removed when the store is opened.
//  - A key never becomes a path. Objects live at buckets/<bucket>/<hh>/<sha256(key)>, and the
//    key, size, ETag, content type, last-modified time and user metadata are stored in a trailer
//    at the end of that same file, so data and metadata are replaced by one rename (keys "a" and
//    "a/b" coexist as in S3). Keys are nevertheless validated (ValidateObjectKey) so that clients
//    mirroring keys onto a filesystem can never be led outside their directory.
//  - Thread-safe. Concurrent puts of one key each write their own temp file; the last rename
//    wins, and the listing index always agrees with what is on disk.
//  - One process per data directory: the listing index lives in memory, built when opened.
//
// Errors (Status codes), which the S3 server maps to S3 error codes:
//   NotFound            no such bucket / key / upload (the caller tells which by asking
//                       BucketExists)
//   AlreadyExists       CreateBucket on an existing bucket
//   Aborted             a write's or delete's conditions (WriteConditions, DeleteConditions)
//                       do not hold (S3's PreconditionFailed)
//   FailedPrecondition  DeleteBucket on a non-empty bucket; CompleteMultipartUpload with a
//                       part other than the last smaller than 5 MiB (S3's EntityTooSmall)
//   InvalidArgument     a bad bucket name, key, part number, range or part list (InvalidPart)
//   OutOfRange          a part list not in ascending order (InvalidPartOrder); a range that
//                       starts past the end of the object (InvalidRange)
//   ResourceExhausted   an object or part larger than Options::max_object_size (EntityTooLarge)
//   DataLoss            the body does not match the expected Content-MD5 (BadDigest)
//   (any)               a reader's own error is returned unchanged, nothing being stored
//   Internal            the filesystem failed
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace slipway::storage {

// S3's limits, which clients rely on.
inline constexpr size_t kMaxKeyBytes = 1024;
inline constexpr int kMaxPartNumber = 10000;
inline constexpr uint64_t kMinPartSize = 5ull * 1024 * 1024;

// OK when name follows S3's bucket naming rules (3-63 characters of lowercase letters, digits,
// dots and hyphens, beginning and ending with a letter or digit, no "..", not an IP address).
Status ValidateBucketName(std::string_view name);
// OK when key is 1..1024 bytes with no NUL, does not start with '/', has no "." or ".."
// segment and no empty segment inside it (a trailing '/' is allowed: "folder/" markers).
Status ValidateObjectKey(std::string_view key);

// True when an If-Match / If-None-Match list ("*", "\"a\", \"b\"", weak W/ tags) names etag.
bool EtagListMatches(std::string_view list, std::string_view etag);

// Produces the next piece of a body into buf: the number of bytes, 0 at the end, or an error
// that aborts the write.
using BodySource = std::function<Result<size_t>(char* buf, size_t n)>;

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // quoted, as S3 sends it: "\"<md5 hex>\"" or "\"<hex>-<parts>\""
  std::chrono::system_clock::time_point last_modified;
  std::string content_type;
  // User metadata, names lower-case without the "x-amz-meta-" prefix.
  std::map<std::string, std::string> metadata;
  // The stored representation headers S3 keeps (cache-control, content-disposition,
  // content-encoding, content-language, expires), names lower-case.
  std::map<std::string, std::string> headers;
  // For an object assembled by CompleteMultipartUpload: each part's size, in order (GetObject
  // with partNumber serves one). Empty for an object written in one piece.
  std::vector<uint64_t> part_sizes;
  // Object tags (S3's tagging), at most 10.
  std::map<std::string, std::string> tags;
  // The flexible checksums the body was verified against when written, by header name
  // ("x-amz-checksum-crc32" -> base64), returned with x-amz-checksum-mode: ENABLED.
  std::map<std::string, std::string> checksums;
  // How the checksum in `checksums` covers the object: "FULL_OBJECT" or "COMPOSITE" (a
  // multipart object's checksum of its parts' checksums). Empty for "FULL_OBJECT" of an
  // object written in one piece.
  std::string checksum_type;
  // For a COMPOSITE multipart object: each part's checksum (base64), in order; GetObject with
  // partNumber returns the part's.
  std::vector<std::string> part_checksums;
  // For a multipart upload in progress: the x-amz-checksum-algorithm it was created with
  // ("CRC32", ...), empty for none; checksum_type then holds its type.
  std::string checksum_algorithm;
};

// A write that only happens if the key's current state allows it (S3's conditional writes).
// Checked under the bucket's lock at the moment of the commit, so two racing writers can never
// both succeed with If-None-Match: *.
struct WriteConditions {
  bool if_none_match_any = false;       // If-None-Match: *  (the key must not exist)
  std::optional<std::string> if_match;  // If-Match: "<etag>" (the key must hold this ETag)
};

struct BucketInfo {
  std::string name;
  std::chrono::system_clock::time_point created;
};

struct PutOptions {
  std::string content_type;  // empty: binary/octet-stream, as S3 defaults
  std::map<std::string, std::string> metadata;
  std::optional<std::string> expected_md5;     // raw 16-byte digest from Content-MD5
  std::map<std::string, std::string> headers;  // as ObjectInfo::headers
  std::map<std::string, std::string> tags;
  WriteConditions conditions;
  // Called once the whole body has been read (and so verified): the checksums to store with it.
  std::function<std::map<std::string, std::string>()> checksums;
  // CreateMultipartUpload: the upload's checksum algorithm ("CRC32", ...) and type
  // ("COMPOSITE", "FULL_OBJECT"), already checked; empty for none.
  std::string checksum_algorithm;
  std::string checksum_type;
};

// DeleteObject's conditions (If-Match, x-amz-if-match-last-modified-time, x-amz-if-match-size).
// With any set, a missing key is NotFound rather than a no-op.
struct DeleteConditions {
  std::optional<std::string> if_match;
  std::optional<std::chrono::system_clock::time_point> last_modified;  // to the second
  std::optional<uint64_t> size;
  bool any() const { return if_match || last_modified || size; }
};

// A Range header's one byte range: "bytes=a-b", "bytes=a-", or "bytes=-n" (the last n bytes).
struct ByteRange {
  std::optional<uint64_t> first;
  std::optional<uint64_t> last;
  std::optional<uint64_t> suffix_length;
};
// Parses a Range header value. nullopt for anything S3 would ignore (bad syntax, several
// ranges), in which case the whole object is served.
std::optional<ByteRange> ParseRangeHeader(std::string_view value);

// An open object (or a byte range of it) to stream out. Reads see the object as it was when
// opened, even if it is replaced or deleted meanwhile.
class ObjectReader {
 public:
  ObjectReader(int fd, ObjectInfo info, uint64_t offset, uint64_t length);
  ~ObjectReader();
  ObjectReader(ObjectReader&& other) noexcept;
  ObjectReader& operator=(ObjectReader&&) = delete;
  ObjectReader(const ObjectReader&) = delete;
  ObjectReader& operator=(const ObjectReader&) = delete;

  const ObjectInfo& info() const { return info_; }
  uint64_t offset() const { return offset_; }  // first byte served
  uint64_t length() const { return length_; }  // bytes served in all
  bool partial() const { return partial_; }    // a range was asked for and applied
  void set_partial(bool p) { partial_ = p; }
  // Serves only [offset, offset + length) of the object instead; nothing read yet.
  void Narrow(uint64_t offset, uint64_t length) {
    offset_ = offset;
    length_ = length;
    partial_ = true;
  }
  // Reads the next bytes of the range; 0 at its end.
  Result<size_t> Read(char* buf, size_t n);
  // The open object file: the range is bytes [offset(), offset() + length()) of it (to hand to
  // sendfile). Valid while the reader lives.
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  ObjectInfo info_;
  uint64_t offset_ = 0;
  uint64_t length_ = 0;
  uint64_t done_ = 0;
  bool partial_ = false;
};

struct ListOptions {
  std::string prefix;
  std::string delimiter;
  int max_keys = 1000;
  std::string continuation_token;  // from a previous ListResult; opaque
  std::string start_after;
};

struct ListResult {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;
  bool is_truncated = false;
  std::string next_continuation_token;  // set when is_truncated
};

struct PartInfo {
  int part_number = 0;
  uint64_t size = 0;
  std::string etag;  // quoted MD5 hex of the part
  std::chrono::system_clock::time_point last_modified;
  std::map<std::string, std::string> checksums;  // as ObjectInfo::checksums, of the part
};

struct MultipartUploadInfo {
  std::string key;
  std::string upload_id;
  std::chrono::system_clock::time_point initiated;
  std::string checksum_algorithm;  // as CreateMultipartUpload named it; empty for none
  std::string checksum_type;
};

struct ListPartsResult {
  std::vector<PartInfo> parts;
  bool is_truncated = false;
  int next_part_number_marker = 0;
  std::string checksum_algorithm;  // the upload's, as MultipartUploadInfo
  std::string checksum_type;
};

struct ListUploadsOptions {
  std::string prefix;
  std::string delimiter;
  std::string key_marker;
  std::string upload_id_marker;
  int max_uploads = 1000;
};

struct ListUploadsResult {
  std::vector<MultipartUploadInfo> uploads;
  std::vector<std::string> common_prefixes;
  bool is_truncated = false;
  std::string next_key_marker;
  std::string next_upload_id_marker;
};

struct CompletedPart {
  int part_number = 0;
  std::string etag;  // as the client sends it; quotes optional
  std::map<std::string, std::string> checksums;  // ChecksumCRC32 etc., by header name
};

// The checksum of an object CompleteMultipartUpload assembles, as ObjectInfo holds it.
struct AssembledChecksum {
  std::map<std::string, std::string> checksums;
  std::string checksum_type;
  std::vector<std::string> part_checksums;
};
// Checks the listed parts' checksums against the stored parts (in the list's order, already
// matched by number and ETag) and answers the object's; an error fails the completion with
// nothing changed.
using PartsChecksum = std::function<Result<AssembledChecksum>(
    const std::vector<CompletedPart>& listed, const std::vector<PartInfo>& stored)>;

class ObjectStore {
 public:
  struct Options {
    std::string data_dir;
    uint64_t max_object_size = 5ull * 1024 * 1024 * 1024;
    Clock* clock = nullptr;  // SystemClock() when null
  };

  // Creates the data directory if needed, removes temp files left by a crash and loads the
  // listing index.
  static Result<std::unique_ptr<ObjectStore>> Open(Options options);
  ~ObjectStore();

  Status CreateBucket(std::string_view bucket);
  bool BucketExists(std::string_view bucket) const;
  // Refused (FailedPrecondition) while the bucket holds objects.
  Status DeleteBucket(std::string_view bucket);
  std::vector<BucketInfo> ListBuckets() const;
  // The bucket's tags (S3's bucket tagging); an empty map removes them. Kept in a file beside
  // the bucket's objects, replaced whole by a rename.
  Status SetBucketTags(std::string_view bucket, const std::map<std::string, std::string>& tags);
  // NotFound for a missing bucket; an empty map when the bucket carries no tags.
  Result<std::map<std::string, std::string>> BucketTags(std::string_view bucket) const;

  Result<ObjectInfo> PutObject(std::string_view bucket, std::string_view key,
                               const PutOptions& options, const BodySource& body);
  // With a range, the reader serves that range (OutOfRange when it starts past the end).
  Result<ObjectReader> GetObject(std::string_view bucket, std::string_view key,
                                 std::optional<ByteRange> range = std::nullopt) const;
  Result<ObjectInfo> HeadObject(std::string_view bucket, std::string_view key) const;
  // OK when the key does not exist (S3 answers 204 either way); NotFound only for the bucket,
  // or for the key when conditions are given.
  Status DeleteObject(std::string_view bucket, std::string_view key,
                      const DeleteConditions& conditions = {});
  // Replaces the object's tags (an empty map removes them), keeping its data, ETag and
  // last-modified time. The object is rewritten beside itself and renamed into place, unless it
  // was replaced meanwhile (then the newer object wins and this answers Aborted).
  Result<ObjectInfo> SetObjectTags(std::string_view bucket, std::string_view key,
                                   std::map<std::string, std::string> tags);
  // ListObjectsV2: keys in lexicographic (byte) order.
  Result<ListResult> ListObjects(std::string_view bucket, const ListOptions& options) const;

  // Multipart uploads. Upload ids are random hex; parts may be uploaded in any order, again
  // (the last upload of a number wins) and concurrently.
  Result<std::string> CreateMultipartUpload(std::string_view bucket, std::string_view key,
                                            const PutOptions& options);
  Result<PartInfo> UploadPart(std::string_view bucket, std::string_view key,
                              std::string_view upload_id, int part_number,
                              const PutOptions& options, const BodySource& body);
  // Assembles the listed parts, in order, into the object. The list must be ascending, name
  // uploaded parts with their ETags, and every part but the last must be >= 5 MiB. The ETag is
  // the MD5 of the parts' binary MD5s, "-<count>". Completing an upload that already completed
  // answers what the first completion did (a client retrying after a lost answer succeeds).
  // `checksum`, when given, is called once the list has been matched against the stored parts
  // and before a byte is copied; its error is returned unchanged, nothing being assembled, and
  // its answer is the object's checksum.
  Result<ObjectInfo> CompleteMultipartUpload(std::string_view bucket, std::string_view key,
                                             std::string_view upload_id,
                                             const std::vector<CompletedPart>& parts,
                                             const WriteConditions& conditions = {},
                                             const PartsChecksum& checksum = nullptr);
  // An upload in progress (NotFound once completed or aborted, or for another key).
  Result<MultipartUploadInfo> MultipartUpload(std::string_view bucket, std::string_view key,
                                              std::string_view upload_id) const;
  Status AbortMultipartUpload(std::string_view bucket, std::string_view key,
                              std::string_view upload_id);
  // The upload's parts with part numbers above `after`, at most max_parts of them.
  Result<ListPartsResult> ListParts(std::string_view bucket, std::string_view key,
                                    std::string_view upload_id, int after, int max_parts) const;
  // Uploads in progress in a bucket, by key then initiation time.
  Result<ListUploadsResult> ListMultipartUploads(std::string_view bucket,
                                                 const ListUploadsOptions& options) const;

  const std::string& data_dir() const { return options_.data_dir; }

 private:
  struct Bucket;
  explicit ObjectStore(Options options);
  Status Load();
  std::shared_ptr<Bucket> FindBucket(std::string_view name) const;
  Result<std::string> UploadDir(std::string_view bucket, std::string_view key,
                                std::string_view upload_id) const;
  std::chrono::system_clock::time_point Now() const;

  Options options_;
  mutable std::mutex mu_;  // guards buckets_ (each Bucket has its own lock for its index)
  std::map<std::string, std::shared_ptr<Bucket>, std::less<>> buckets_;
};

}  // namespace slipway::storage
