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
};

struct BucketInfo {
  std::string name;
  std::chrono::system_clock::time_point created;
};

struct PutOptions {
  std::string content_type;  // empty: binary/octet-stream, as S3 defaults
  std::map<std::string, std::string> metadata;
  std::optional<std::string> expected_md5;  // raw 16-byte digest from Content-MD5
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
  // Reads the next bytes of the range; 0 at its end.
  Result<size_t> Read(char* buf, size_t n);

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
};

struct CompletedPart {
  int part_number = 0;
  std::string etag;  // as the client sends it; quotes optional
};

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

  Result<ObjectInfo> PutObject(std::string_view bucket, std::string_view key,
                               const PutOptions& options, const BodySource& body);
  // With a range, the reader serves that range (OutOfRange when it starts past the end).
  Result<ObjectReader> GetObject(std::string_view bucket, std::string_view key,
                                 std::optional<ByteRange> range = std::nullopt) const;
  Result<ObjectInfo> HeadObject(std::string_view bucket, std::string_view key) const;
  // OK when the key does not exist (S3 answers 204 either way); NotFound only for the bucket.
  Status DeleteObject(std::string_view bucket, std::string_view key);
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
  // the MD5 of the parts' binary MD5s, "-<count>".
  Result<ObjectInfo> CompleteMultipartUpload(std::string_view bucket, std::string_view key,
                                             std::string_view upload_id,
                                             const std::vector<CompletedPart>& parts);
  Status AbortMultipartUpload(std::string_view bucket, std::string_view key,
                              std::string_view upload_id);

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
