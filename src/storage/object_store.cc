#include "storage/object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "base/crypto.h"
#include "net/http.h"

namespace slipway::storage {
namespace fs = std::filesystem;
using std::chrono::system_clock;

namespace {

// The trailer ends every object and part file: header bytes, then 8 bytes of header length
// (little-endian) and 8 bytes of magic. A file without it is not ours and is ignored.
constexpr char kMagic[8] = {'S', 'L', 'P', 'W', 'Y', 'S', '3', '\x01'};
constexpr size_t kFooterBytes = 16;
constexpr uint64_t kMaxHeaderBytes = 1 << 20;
constexpr size_t kCopyBuffer = 1 << 20;

Status Errno(std::string_view what, const std::string& path, int err = errno) {
  return Status::Internal(
      fmt::format("{} {} failed: {} (check the data directory's disk space "
                  "and permissions)",
                  what, path, std::strerror(err)));
}

class Md5 {
 public:
  Md5() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_md5(), nullptr); }
  ~Md5() { EVP_MD_CTX_free(ctx_); }
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }
  // Raw 16-byte digest.
  std::string Finish() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, out, &len);
    return std::string(reinterpret_cast<char*>(out), len);
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }
std::string_view Unquote(std::string_view s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

Status WriteAll(int fd, const char* data, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Errno("writing", path);
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status PreadAll(int fd, char* data, size_t n, uint64_t offset, const std::string& what) {
  while (n > 0) {
    ssize_t r = ::pread(fd, data, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Errno("reading", what);
    }
    if (r == 0) return Status::DataLoss(what + " ended early; the store's file is truncated");
    data += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

// fsync of a directory makes a rename or a new entry in it survive a crash.
Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("opening directory", dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Errno("fsync of directory", dir, err);
  return Status::Ok();
}

// mkdir that also makes the new entry durable; OK when the directory exists.
Status EnsureDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) == 0) return FsyncDir(fs::path(dir).parent_path().string());
  if (errno == EEXIST) return Status::Ok();
  return Errno("creating directory", dir);
}

int64_t ToMillis(system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
system_clock::time_point FromMillis(int64_t ms) {
  return system_clock::time_point(std::chrono::milliseconds(ms));
}

// Header lines are "name=value" with values percent-encoded, so keys and metadata may hold
// any byte (newlines included).
std::string EncodeHeader(const ObjectInfo& info) {
  std::string h;
  auto line = [&](std::string_view name, std::string_view value) {
    h += name;
    h += '=';
    h += net::UriEncode(value);
    h += '\n';
  };
  line("key", info.key);
  line("size", std::to_string(info.size));
  line("etag", info.etag);
  line("content-type", info.content_type);
  line("mtime-ms", std::to_string(ToMillis(info.last_modified)));
  for (const auto& [k, v] : info.metadata) line("meta." + net::UriEncode(k), v);
  return h;
}

bool ParseUint(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t next = v * 10 + static_cast<uint64_t>(c - '0');
    if (next / 10 != v) return false;
    v = next;
  }
  *out = v;
  return true;
}

bool DecodeHeader(std::string_view h, ObjectInfo* info) {
  size_t pos = 0;
  while (pos < h.size()) {
    size_t nl = h.find('\n', pos);
    if (nl == std::string_view::npos) return false;
    std::string_view line = h.substr(pos, nl - pos);
    pos = nl + 1;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view name = line.substr(0, eq);
    std::string value;
    if (!net::UriDecode(line.substr(eq + 1), &value)) return false;
    uint64_t n = 0;
    if (name == "key") {
      info->key = value;
    } else if (name == "size") {
      if (!ParseUint(value, &info->size)) return false;
    } else if (name == "etag") {
      info->etag = value;
    } else if (name == "content-type") {
      info->content_type = value;
    } else if (name == "mtime-ms") {
      if (!ParseUint(value, &n)) return false;
      info->last_modified = FromMillis(static_cast<int64_t>(n));
    } else if (name.starts_with("meta.")) {
      std::string meta_name;
      if (!net::UriDecode(name.substr(5), &meta_name)) return false;
      info->metadata[meta_name] = value;
    }
  }
  return true;
}

std::string EncodeTrailer(const ObjectInfo& info) {
  std::string t = EncodeHeader(info);
  uint64_t len = t.size();
  for (int i = 0; i < 8; ++i) t += static_cast<char>((len >> (8 * i)) & 0xff);
  t.append(kMagic, sizeof kMagic);
  return t;
}

// Reads the trailer of an open object or part file; the data is bytes [0, info.size).
Result<ObjectInfo> ReadTrailer(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Errno("stat of", path);
  auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < kFooterBytes) return Status::DataLoss(path + " is not an object file");
  char footer[kFooterBytes];
  SLIPWAY_RETURN_IF_ERROR(PreadAll(fd, footer, kFooterBytes, file_size - kFooterBytes, path));
  if (std::memcmp(footer + 8, kMagic, sizeof kMagic) != 0) {
    return Status::DataLoss(path + " is not an object file");
  }
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) {
    header_len |= static_cast<uint64_t>(static_cast<unsigned char>(footer[i])) << (8 * i);
  }
  if (header_len > kMaxHeaderBytes || header_len + kFooterBytes > file_size) {
    return Status::DataLoss(path + " has a damaged trailer");
  }
  std::string header(header_len, '\0');
  SLIPWAY_RETURN_IF_ERROR(
      PreadAll(fd, header.data(), header_len, file_size - kFooterBytes - header_len, path));
  ObjectInfo info;
  if (!DecodeHeader(header, &info) || info.size != file_size - kFooterBytes - header_len) {
    return Status::DataLoss(path + " has a damaged trailer");
  }
  return info;
}

Result<ObjectInfo> ReadTrailerAt(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Errno("opening", path);
  }
  auto info = ReadTrailer(fd, path);
  ::close(fd);
  return info;
}

// A file in the store's tmp directory, removed on destruction unless renamed into place.
class TempFile {
 public:
  static Result<std::unique_ptr<TempFile>> Create(const std::string& tmp_dir) {
    std::string path = tmp_dir + "/" + RandomHex(16);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("creating temp file", path);
    return std::unique_ptr<TempFile>(new TempFile(fd, std::move(path)));
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  Status Append(const char* data, size_t n) { return WriteAll(fd_, data, n, path_); }
  Status SyncAndClose() {
    if (::fsync(fd_) != 0) return Errno("fsync of", path_);
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return Errno("closing", path_);
    return Status::Ok();
  }
  // rename() into place: the file appears whole at `to` or not at all.
  Status RenameTo(const std::string& to) {
    if (::rename(path_.c_str(), to.c_str()) != 0) {
      if (errno == ENOENT) return Status::NotFound(to + ": its directory is gone");
      return Errno("renaming into", to);
    }
    committed_ = true;
    return Status::Ok();
  }

 private:
  TempFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
  bool committed_ = false;
};

struct StreamedBody {
  uint64_t size = 0;
  std::string md5;  // raw
};

// Copies a body into the temp file, hashing it, refusing it when it grows past max_size.
Result<StreamedBody> StreamBody(const BodySource& body, TempFile& tmp, uint64_t max_size,
                                const std::optional<std::string>& expected_md5) {
  std::vector<char> buf(kCopyBuffer);
  Md5 md5;
  StreamedBody out;
  for (;;) {
    SLIPWAY_ASSIGN_OR_RETURN(size_t n, body(buf.data(), buf.size()));
    if (n == 0) break;
    out.size += n;
    if (out.size > max_size) {
      return Status::ResourceExhausted(fmt::format(
          "the body is larger than the store's limit of {} bytes; upload a smaller object or "
          "raise --max-object-size",
          max_size));
    }
    md5.Update(buf.data(), n);
    SLIPWAY_RETURN_IF_ERROR(tmp.Append(buf.data(), n));
  }
  out.md5 = md5.Finish();
  if (expected_md5 && *expected_md5 != out.md5) {
    return Status::DataLoss(
        "the Content-MD5 you specified did not match what was received; send the body again");
  }
  return out;
}

std::string KeyHash(std::string_view key) { return Sha256Hex(key); }

Status NoSuchBucket(std::string_view bucket) {
  return Status::NotFound(fmt::format(
      "the bucket \"{}\" does not exist; create it first (aws s3 mb s3://{})", bucket, bucket));
}

Status NoSuchKey(std::string_view key) {
  return Status::NotFound(fmt::format("the key \"{}\" does not exist", key));
}

// Closes a descriptor on every early return.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::string HexDecode(std::string_view hex) {
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
  };
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(nib(hex[i]) * 16 + nib(hex[i + 1]));
  }
  return out;
}

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string NormalizeContentType(std::string_view ct) {
  return ct.empty() ? std::string("binary/octet-stream") : std::string(ct);
}

// Continuation tokens name the last entry listed: "K<key>" after an object, "P<prefix>" after a
// common prefix. Opaque to clients; base64 keeps any key byte safe in a query string.
std::string EncodeToken(char kind, std::string_view s) {
  return Base64Encode(std::string(1, kind) + std::string(s));
}

}  // namespace

// --- validation ---------------------------------------------------------------------------------

Status ValidateBucketName(std::string_view name) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(fmt::format(
        "the bucket name \"{}\" is not valid: {}; use 3-63 lowercase letters, digits, dots and "
        "hyphens, beginning and ending with a letter or digit",
        name, why));
  };
  if (name.size() < 3 || name.size() > 63) return bad("it must be 3 to 63 characters long");
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (char c : name) {
    if (!alnum(c) && c != '.' && c != '-') return bad("it holds a character S3 does not allow");
  }
  if (!alnum(name.front()) || !alnum(name.back())) {
    return bad("it must begin and end with a letter or digit");
  }
  if (name.find("..") != std::string_view::npos) return bad("it holds two adjacent dots");
  if (name.starts_with("xn--")) return bad("it starts with the reserved prefix xn--");
  int dots = 0;
  bool digits_and_dots = true;
  for (char c : name) {
    if (c == '.')
      ++dots;
    else if (c < '0' || c > '9')
      digits_and_dots = false;
  }
  if (dots == 3 && digits_and_dots) return bad("it is formatted as an IP address");
  return Status::Ok();
}

Status ValidateObjectKey(std::string_view key) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(
        fmt::format("the object key is not valid: {}; choose a key "
                    "without it",
                    why));
  };
  if (key.empty()) return bad("it is empty");
  if (key.size() > kMaxKeyBytes) return bad("it is longer than 1024 bytes");
  if (key.find('\0') != std::string_view::npos) return bad("it contains a NUL byte");
  if (key.front() == '/') return bad("it starts with '/' (an absolute path)");
  size_t start = 0;
  for (;;) {
    size_t slash = key.find('/', start);
    std::string_view seg =
        key.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (seg == "..") return bad("it contains a \"..\" segment");
    if (seg == ".") return bad("it contains a \".\" segment");
    if (slash == std::string_view::npos) break;
    if (seg.empty()) return bad("it contains an empty segment (\"//\")");
    start = slash + 1;
    if (start == key.size()) break;  // "folder/" marker
  }
  return Status::Ok();
}

std::optional<ByteRange> ParseRangeHeader(std::string_view value) {
  if (!value.starts_with("bytes=")) return std::nullopt;
  std::string_view spec = value.substr(6);
  if (spec.find(',') != std::string_view::npos) return std::nullopt;
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  ByteRange r;
  uint64_t n = 0;
  if (a.empty()) {
    if (!ParseUint(b, &n)) return std::nullopt;
    r.suffix_length = n;
    return r;
  }
  if (!ParseUint(a, &n)) return std::nullopt;
  r.first = n;
  if (!b.empty()) {
    if (!ParseUint(b, &n) || n < *r.first) return std::nullopt;
    r.last = n;
  }
  return r;
}

// --- ObjectReader -------------------------------------------------------------------------------

ObjectReader::ObjectReader(int fd, ObjectInfo info, uint64_t offset, uint64_t length)
    : fd_(fd), info_(std::move(info)), offset_(offset), length_(length) {}

ObjectReader::~ObjectReader() {
  if (fd_ >= 0) ::close(fd_);
}

ObjectReader::ObjectReader(ObjectReader&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      info_(std::move(other.info_)),
      offset_(other.offset_),
      length_(other.length_),
      done_(other.done_),
      partial_(other.partial_) {}

Result<size_t> ObjectReader::Read(char* buf, size_t n) {
  uint64_t left = length_ - done_;
  if (left == 0) return size_t{0};
  n = static_cast<size_t>(std::min<uint64_t>(n, left));
  for (;;) {
    ssize_t r = ::pread(fd_, buf, n, static_cast<off_t>(offset_ + done_));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Errno("reading object", info_.key);
    if (r == 0) return Status::DataLoss("the object " + info_.key + " ended early on disk");
    done_ += static_cast<uint64_t>(r);
    return static_cast<size_t>(r);
  }
}

// --- ObjectStore --------------------------------------------------------------------------------

struct ObjectStore::Bucket {
  std::string name;
  std::string dir;
  system_clock::time_point created;
  mutable std::mutex mu;  // guards index and deleted, and orders renames into dir
  std::map<std::string, ObjectInfo> index;
  bool deleted = false;

  std::string ObjectPath(std::string_view key) const {
    std::string h = KeyHash(key);
    return dir + "/" + h.substr(0, 2) + "/" + h;
  }

  // Moves a finished temp file into its place and records it in the index, under the bucket's
  // lock so the index and the disk agree on which of two racing puts won.
  Result<ObjectInfo> Commit(TempFile& tmp, ObjectInfo info) {
    std::string trailer = EncodeTrailer(info);
    SLIPWAY_RETURN_IF_ERROR(tmp.Append(trailer.data(), trailer.size()));
    SLIPWAY_RETURN_IF_ERROR(tmp.SyncAndClose());
    std::lock_guard lock(mu);
    if (deleted) return NoSuchBucket(name);
    std::string path = ObjectPath(info.key);
    std::string parent = fs::path(path).parent_path().string();
    SLIPWAY_RETURN_IF_ERROR(EnsureDir(parent));
    SLIPWAY_RETURN_IF_ERROR(tmp.RenameTo(path));
    index[info.key] = info;
    SLIPWAY_RETURN_IF_ERROR(FsyncDir(parent));
    return info;
  }
};

ObjectStore::ObjectStore(Options options) : options_(std::move(options)) {}
ObjectStore::~ObjectStore() = default;

system_clock::time_point ObjectStore::Now() const {
  Clock& clock = options_.clock != nullptr ? *options_.clock : SystemClock();
  return clock.Now();
}

Result<std::unique_ptr<ObjectStore>> ObjectStore::Open(Options options) {
  if (options.data_dir.empty()) {
    return Status::InvalidArgument("the object store needs a data directory (use --data DIR)");
  }
  std::unique_ptr<ObjectStore> store(new ObjectStore(std::move(options)));
  SLIPWAY_RETURN_IF_ERROR(store->Load());
  return store;
}

Status ObjectStore::Load() {
  std::error_code ec;
  const std::string& root = options_.data_dir;
  fs::create_directories(root, ec);
  if (ec) return Errno("creating data directory", root, ec.value());
  for (const char* sub : {"tmp", "buckets", "uploads"}) {
    SLIPWAY_RETURN_IF_ERROR(EnsureDir(root + "/" + sub));
  }
  // Whatever is in tmp belongs to writes that never completed.
  size_t removed = 0;
  for (const auto& e : fs::directory_iterator(root + "/tmp", ec)) {
    fs::remove_all(e.path(), ec);
    ++removed;
  }
  if (removed > 0) spdlog::info("removed {} unfinished uploads from {}/tmp", removed, root);
  // An upload directory without its description is a CreateMultipartUpload that crashed.
  for (const auto& e : fs::directory_iterator(root + "/uploads", ec)) {
    if (!fs::exists(e.path() / "upload")) fs::remove_all(e.path(), ec);
  }

  for (const auto& be : fs::directory_iterator(root + "/buckets", ec)) {
    std::string name = be.path().filename().string();
    if (!be.is_directory() || !ValidateBucketName(name).ok()) continue;
    auto bucket = std::make_shared<Bucket>();
    bucket->name = name;
    bucket->dir = be.path().string();
    std::string created = [&] {
      std::ifstream in(bucket->dir + "/.created");
      std::string s;
      std::getline(in, s);
      return s;
    }();
    uint64_t ms = 0;
    bucket->created = ParseUint(created, &ms) ? FromMillis(static_cast<int64_t>(ms)) : Now();
    for (const auto& he : fs::directory_iterator(be.path(), ec)) {
      if (!he.is_directory()) continue;
      for (const auto& oe : fs::directory_iterator(he.path(), ec)) {
        auto info = ReadTrailerAt(oe.path().string());
        if (!info.ok() || KeyHash(info->key) != oe.path().filename().string()) {
          spdlog::warn("ignoring {}: it is not an object file of this store", oe.path().string());
          continue;
        }
        bucket->index[info->key] = std::move(*info);
      }
    }
    buckets_[name] = std::move(bucket);
  }
  if (ec) return Errno("scanning data directory", root, ec.value());
  return Status::Ok();
}

std::shared_ptr<ObjectStore::Bucket> ObjectStore::FindBucket(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(name);
  return it == buckets_.end() ? nullptr : it->second;
}

Status ObjectStore::CreateBucket(std::string_view name) {
  SLIPWAY_RETURN_IF_ERROR(ValidateBucketName(name));
  std::lock_guard lock(mu_);
  if (buckets_.count(name) > 0) {
    return Status::AlreadyExists(fmt::format("the bucket \"{}\" already exists", name));
  }
  auto bucket = std::make_shared<Bucket>();
  bucket->name = std::string(name);
  bucket->dir = options_.data_dir + "/buckets/" + bucket->name;
  bucket->created = Now();
  SLIPWAY_RETURN_IF_ERROR(EnsureDir(bucket->dir));
  // The creation time is only informational: written without the temp-and-rename dance.
  {
    std::ofstream out(bucket->dir + "/.created");
    out << ToMillis(bucket->created) << "\n";
  }
  buckets_[bucket->name] = std::move(bucket);
  return Status::Ok();
}

bool ObjectStore::BucketExists(std::string_view name) const { return FindBucket(name) != nullptr; }

Status ObjectStore::DeleteBucket(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(name);
  if (it == buckets_.end()) return NoSuchBucket(name);
  Bucket& b = *it->second;
  std::lock_guard block(b.mu);
  if (!b.index.empty()) {
    return Status::FailedPrecondition(
        fmt::format("the bucket \"{}\" is not empty; delete its objects first (aws s3 rm "
                    "s3://{} --recursive)",
                    name, name));
  }
  // Moved to tmp first so a crash halfway never leaves half a bucket.
  std::string grave = options_.data_dir + "/tmp/bucket-" + RandomHex(8);
  if (::rename(b.dir.c_str(), grave.c_str()) != 0) return Errno("removing bucket", b.dir);
  SLIPWAY_RETURN_IF_ERROR(FsyncDir(options_.data_dir + "/buckets"));
  std::error_code ec;
  fs::remove_all(grave, ec);
  b.deleted = true;
  buckets_.erase(it);
  return Status::Ok();
}

std::vector<BucketInfo> ObjectStore::ListBuckets() const {
  std::lock_guard lock(mu_);
  std::vector<BucketInfo> out;
  for (const auto& [name, b] : buckets_) out.push_back({name, b->created});
  return out;
}

Result<ObjectInfo> ObjectStore::PutObject(std::string_view bucket_name, std::string_view key,
                                          const PutOptions& options, const BodySource& body) {
  SLIPWAY_RETURN_IF_ERROR(ValidateObjectKey(key));
  auto bucket = FindBucket(bucket_name);
  if (!bucket) return NoSuchBucket(bucket_name);
  SLIPWAY_ASSIGN_OR_RETURN(auto tmp, TempFile::Create(options_.data_dir + "/tmp"));
  SLIPWAY_ASSIGN_OR_RETURN(auto streamed,
                           StreamBody(body, *tmp, options_.max_object_size, options.expected_md5));
  ObjectInfo info;
  info.key = std::string(key);
  info.size = streamed.size;
  info.etag = Quote(HexEncode(streamed.md5));
  info.content_type = NormalizeContentType(options.content_type);
  info.metadata = options.metadata;
  info.last_modified = Now();
  return bucket->Commit(*tmp, std::move(info));
}

Result<ObjectReader> ObjectStore::GetObject(std::string_view bucket_name, std::string_view key,
                                            std::optional<ByteRange> range) const {
  SLIPWAY_RETURN_IF_ERROR(ValidateObjectKey(key));
  auto bucket = FindBucket(bucket_name);
  if (!bucket) return NoSuchBucket(bucket_name);
  std::string path = bucket->ObjectPath(key);
  FdGuard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return NoSuchKey(key);
    return Errno("opening", path);
  }
  SLIPWAY_ASSIGN_OR_RETURN(ObjectInfo info, ReadTrailer(fd.get(), path));
  if (info.key != key) return NoSuchKey(key);
  uint64_t size = info.size, offset = 0, length = size;
  if (range) {
    auto unsatisfiable = [&] {
      return Status::OutOfRange(fmt::format(
          "the requested range is not satisfiable: the object is {} bytes long; ask for a range "
          "inside it",
          size));
    };
    if (range->suffix_length) {
      if (*range->suffix_length == 0 || size == 0) return unsatisfiable();
      length = std::min(*range->suffix_length, size);
      offset = size - length;
    } else {
      if (!range->first || *range->first >= size) return unsatisfiable();
      offset = *range->first;
      uint64_t last = range->last ? std::min(*range->last, size - 1) : size - 1;
      length = last - offset + 1;
    }
  }
  ObjectReader out(fd.release(), std::move(info), offset, length);
  out.set_partial(range.has_value());
  return out;
}

Result<ObjectInfo> ObjectStore::HeadObject(std::string_view bucket_name,
                                           std::string_view key) const {
  SLIPWAY_ASSIGN_OR_RETURN(ObjectReader reader, GetObject(bucket_name, key));
  return reader.info();
}

Status ObjectStore::DeleteObject(std::string_view bucket_name, std::string_view key) {
  SLIPWAY_RETURN_IF_ERROR(ValidateObjectKey(key));
  auto bucket = FindBucket(bucket_name);
  if (!bucket) return NoSuchBucket(bucket_name);
  std::lock_guard lock(bucket->mu);
  std::string path = bucket->ObjectPath(key);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Errno("deleting", path);
  }
  bucket->index.erase(std::string(key));
  return FsyncDir(fs::path(path).parent_path().string());
}

Result<ListResult> ObjectStore::ListObjects(std::string_view bucket_name,
                                            const ListOptions& options) const {
  auto bucket = FindBucket(bucket_name);
  if (!bucket) return NoSuchBucket(bucket_name);
  // Where to resume. Entries (keys, or the common prefixes they roll up into) are listed only
  // when they sort after this point, so a common prefix already listed is never listed again.
  std::string after = options.start_after;
  if (!options.continuation_token.empty()) {
    std::string token;
    if (!Base64Decode(options.continuation_token, &token) || token.empty() ||
        (token[0] != 'K' && token[0] != 'P')) {
      return Status::InvalidArgument(
          "the continuation token is not one this store issued; start the listing again "
          "without it");
    }
    after = token.substr(1);
  }
  int max_keys = std::clamp(options.max_keys, 0, 1000);
  const std::string& prefix = options.prefix;
  const std::string& delim = options.delimiter;

  ListResult out;
  std::lock_guard lock(bucket->mu);
  int count = 0;
  std::string last_entry;
  char last_kind = 'K';
  for (auto it = bucket->index.lower_bound(std::max(prefix, after)); it != bucket->index.end();
       ++it) {
    const std::string& key = it->first;
    if (key.compare(0, prefix.size(), prefix) != 0) break;  // sorted: past the prefix
    std::string common;
    if (!delim.empty()) {
      size_t d = key.find(delim, prefix.size());
      if (d != std::string::npos) common = key.substr(0, d + delim.size());
    }
    const std::string& entry = common.empty() ? key : common;
    if (!after.empty() && entry <= after) continue;
    if (!common.empty() && !out.common_prefixes.empty() && out.common_prefixes.back() == common) {
      continue;  // rolled up into the prefix already listed
    }
    if (count == max_keys) {
      out.is_truncated = count > 0;
      break;
    }
    ++count;
    if (common.empty()) {
      out.objects.push_back(it->second);
      last_kind = 'K';
    } else {
      out.common_prefixes.push_back(common);
      last_kind = 'P';
    }
    last_entry = entry;
  }
  if (out.is_truncated) out.next_continuation_token = EncodeToken(last_kind, last_entry);
  return out;
}

// --- multipart uploads
// ----------------------------------------------------------------------------

namespace {

std::string PartFileName(int part_number) { return fmt::format("part-{:05d}", part_number); }

struct UploadDescription {
  std::string bucket;
  ObjectInfo info;  // key, content type, metadata
};

std::string EncodeUpload(const UploadDescription& u) {
  return "bucket=" + net::UriEncode(u.bucket) + "\n" + EncodeHeader(u.info);
}

bool DecodeUpload(std::string_view text, UploadDescription* u) {
  if (!text.starts_with("bucket=")) return false;
  size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return false;
  if (!net::UriDecode(text.substr(7, nl - 7), &u->bucket)) return false;
  return DecodeHeader(text.substr(nl + 1), &u->info);
}

Status NoSuchUpload(std::string_view upload_id) {
  return Status::NotFound(fmt::format(
      "the multipart upload \"{}\" does not exist: it was completed or aborted, or belongs to "
      "another key; start a new upload",
      upload_id));
}

// Appends bytes [0, size) of the file at in_fd to out, in the kernel when it can.
Status CopyData(int in_fd, uint64_t size, TempFile& out, const std::string& what) {
  loff_t in_off = 0;
  while (static_cast<uint64_t>(in_off) < size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(size - in_off, 64 << 20));
    ssize_t n = ::copy_file_range(in_fd, &in_off, out.fd(), nullptr, want, 0);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return Status::DataLoss(what + " ended early on disk");
    if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) {
      return Errno("copying", what);
    }
    // Plain read/write for filesystems without copy_file_range.
    std::vector<char> buf(kCopyBuffer);
    while (static_cast<uint64_t>(in_off) < size) {
      size_t chunk = static_cast<size_t>(std::min<uint64_t>(size - in_off, buf.size()));
      SLIPWAY_RETURN_IF_ERROR(PreadAll(in_fd, buf.data(), chunk, in_off, what));
      SLIPWAY_RETURN_IF_ERROR(out.Append(buf.data(), chunk));
      in_off += static_cast<loff_t>(chunk);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> ObjectStore::UploadDir(std::string_view bucket, std::string_view key,
                                           std::string_view upload_id) const {
  // Ids are ours: 32 hex digits. Anything else cannot name a directory of ours.
  if (upload_id.size() != 32 || !IsHex(upload_id)) return NoSuchUpload(upload_id);
  std::string dir = options_.data_dir + "/uploads/" + std::string(upload_id);
  std::ifstream in(dir + "/upload", std::ios::binary);
  if (!in) return NoSuchUpload(upload_id);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  UploadDescription u;
  if (!DecodeUpload(text, &u) || u.bucket != bucket || u.info.key != key) {
    return NoSuchUpload(upload_id);
  }
  return dir;
}

Result<std::string> ObjectStore::CreateMultipartUpload(std::string_view bucket,
                                                       std::string_view key,
                                                       const PutOptions& options) {
  SLIPWAY_RETURN_IF_ERROR(ValidateObjectKey(key));
  if (!BucketExists(bucket)) return NoSuchBucket(bucket);
  std::string id = RandomHex(16);
  std::string dir = options_.data_dir + "/uploads/" + id;
  SLIPWAY_RETURN_IF_ERROR(EnsureDir(dir));
  UploadDescription u;
  u.bucket = std::string(bucket);
  u.info.key = std::string(key);
  u.info.content_type = NormalizeContentType(options.content_type);
  u.info.metadata = options.metadata;
  std::string text = EncodeUpload(u);
  SLIPWAY_ASSIGN_OR_RETURN(auto tmp, TempFile::Create(options_.data_dir + "/tmp"));
  SLIPWAY_RETURN_IF_ERROR(tmp->Append(text.data(), text.size()));
  SLIPWAY_RETURN_IF_ERROR(tmp->SyncAndClose());
  SLIPWAY_RETURN_IF_ERROR(tmp->RenameTo(dir + "/upload"));
  SLIPWAY_RETURN_IF_ERROR(FsyncDir(dir));
  return id;
}

Result<PartInfo> ObjectStore::UploadPart(std::string_view bucket, std::string_view key,
                                         std::string_view upload_id, int part_number,
                                         const PutOptions& options, const BodySource& body) {
  if (part_number < 1 || part_number > kMaxPartNumber) {
    return Status::InvalidArgument(fmt::format(
        "part number {} is out of range; use a part number from 1 to 10000", part_number));
  }
  if (!BucketExists(bucket)) return NoSuchBucket(bucket);
  SLIPWAY_ASSIGN_OR_RETURN(std::string dir, UploadDir(bucket, key, upload_id));
  SLIPWAY_ASSIGN_OR_RETURN(auto tmp, TempFile::Create(options_.data_dir + "/tmp"));
  SLIPWAY_ASSIGN_OR_RETURN(auto streamed,
                           StreamBody(body, *tmp, options_.max_object_size, options.expected_md5));
  ObjectInfo info;
  info.key = std::string(key);
  info.size = streamed.size;
  info.etag = Quote(HexEncode(streamed.md5));
  info.last_modified = Now();
  std::string trailer = EncodeTrailer(info);
  SLIPWAY_RETURN_IF_ERROR(tmp->Append(trailer.data(), trailer.size()));
  SLIPWAY_RETURN_IF_ERROR(tmp->SyncAndClose());
  if (auto st = tmp->RenameTo(dir + "/" + PartFileName(part_number)); !st.ok()) {
    return st.code() == Code::kNotFound ? NoSuchUpload(upload_id) : st;
  }
  SLIPWAY_RETURN_IF_ERROR(FsyncDir(dir));
  return PartInfo{part_number, info.size, info.etag};
}

Result<ObjectInfo> ObjectStore::CompleteMultipartUpload(std::string_view bucket_name,
                                                        std::string_view key,
                                                        std::string_view upload_id,
                                                        const std::vector<CompletedPart>& parts) {
  auto bucket = FindBucket(bucket_name);
  if (!bucket) return NoSuchBucket(bucket_name);
  SLIPWAY_ASSIGN_OR_RETURN(std::string dir, UploadDir(bucket_name, key, upload_id));
  if (parts.empty()) {
    return Status::InvalidArgument(
        "the part list is empty; list every uploaded part to complete the upload");
  }
  std::ifstream in(dir + "/upload", std::ios::binary);
  UploadDescription u;
  DecodeUpload(std::string((std::istreambuf_iterator<char>(in)), {}), &u);

  // Validate everything before copying a byte.
  std::vector<std::unique_ptr<FdGuard>> fds;
  std::vector<uint64_t> sizes;
  std::string md5s;
  uint64_t total = 0;
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].part_number <= parts[i - 1].part_number) {
      return Status::OutOfRange(
          "the list of parts was not in ascending order; list the parts by increasing part "
          "number, each once");
    }
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    const CompletedPart& p = parts[i];
    std::string path = dir + "/" + PartFileName(p.part_number);
    auto invalid_part = [&] {
      return Status::InvalidArgument(fmt::format(
          "part {} was not uploaded or its ETag {} does not match; upload it again or list the "
          "ETag that UploadPart returned",
          p.part_number, p.etag));
    };
    if (p.part_number < 1 || p.part_number > kMaxPartNumber) return invalid_part();
    auto fd = std::make_unique<FdGuard>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd->get() < 0) return invalid_part();
    SLIPWAY_ASSIGN_OR_RETURN(ObjectInfo part, ReadTrailer(fd->get(), path));
    if (Unquote(part.etag) != Unquote(p.etag)) return invalid_part();
    if (i + 1 < parts.size() && part.size < kMinPartSize) {
      return Status::FailedPrecondition(fmt::format(
          "part {} is {} bytes, smaller than the minimum allowed part size of 5 MiB; every part "
          "but the last must be at least 5 MiB",
          p.part_number, part.size));
    }
    total += part.size;
    if (total > options_.max_object_size) {
      return Status::ResourceExhausted(fmt::format(
          "the assembled object would be larger than the store's limit of {} bytes; upload a "
          "smaller object or raise --max-object-size",
          options_.max_object_size));
    }
    md5s += HexDecode(Unquote(part.etag));
    sizes.push_back(part.size);
    fds.push_back(std::move(fd));
  }

  SLIPWAY_ASSIGN_OR_RETURN(auto tmp, TempFile::Create(options_.data_dir + "/tmp"));
  for (size_t i = 0; i < fds.size(); ++i) {
    SLIPWAY_RETURN_IF_ERROR(
        CopyData(fds[i]->get(), sizes[i], *tmp, dir + "/" + PartFileName(parts[i].part_number)));
  }
  Md5 md5;
  md5.Update(md5s.data(), md5s.size());
  ObjectInfo info = u.info;
  info.size = total;
  info.etag = Quote(HexEncode(md5.Finish()) + "-" + std::to_string(parts.size()));
  info.last_modified = Now();
  SLIPWAY_ASSIGN_OR_RETURN(ObjectInfo done, bucket->Commit(*tmp, std::move(info)));
  std::error_code ec;
  fs::remove_all(dir, ec);
  return done;
}

Status ObjectStore::AbortMultipartUpload(std::string_view bucket, std::string_view key,
                                         std::string_view upload_id) {
  if (!BucketExists(bucket)) return NoSuchBucket(bucket);
  SLIPWAY_ASSIGN_OR_RETURN(std::string dir, UploadDir(bucket, key, upload_id));
  // Renamed away first so that the upload disappears in one step.
  std::string grave = options_.data_dir + "/tmp/upload-" + RandomHex(8);
  if (::rename(dir.c_str(), grave.c_str()) != 0) {
    if (errno == ENOENT) return NoSuchUpload(upload_id);
    return Errno("aborting upload", dir);
  }
  std::error_code ec;
  fs::remove_all(grave, ec);
  return Status::Ok();
}

}  // namespace slipway::storage
