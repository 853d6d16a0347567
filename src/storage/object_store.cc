#include "storage/object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <thread>
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

// An upload's directory holds this file once it completed: the object it made, so that a
// CompleteMultipartUpload sent again answers the same. Removed a day later, when the store opens.
constexpr char kCompletedFile[] = "completed";
constexpr auto kCompletedKept = std::chrono::hours(24);
// A bucket's tags, beside its hash directories (a name no directory of ours has).
constexpr char kBucketTagsFile[] = ".tags";

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
  for (const auto& [k, v] : info.headers) line("hdr." + net::UriEncode(k), v);
  for (const auto& [k, v] : info.tags) line("tag." + net::UriEncode(k), v);
  for (const auto& [k, v] : info.checksums) line("sum." + net::UriEncode(k), v);
  if (!info.part_sizes.empty()) {
    std::string sizes;
    for (uint64_t n : info.part_sizes) {
      if (!sizes.empty()) sizes += ',';
      sizes += std::to_string(n);
    }
    line("parts", sizes);
  }
  if (!info.checksum_type.empty()) line("sum-type", info.checksum_type);
  if (!info.checksum_algorithm.empty()) line("sum-algorithm", info.checksum_algorithm);
  if (!info.part_checksums.empty()) {
    std::string sums;  // base64 has no commas
    for (const auto& sum : info.part_checksums) {
      if (!sums.empty()) sums += ',';
      sums += sum;
    }
    line("part-sums", sums);
  }
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
    } else if (name.starts_with("hdr.")) {
      std::string header_name;
      if (!net::UriDecode(name.substr(4), &header_name)) return false;
      info->headers[header_name] = value;
    } else if (name.starts_with("sum.")) {
      std::string sum;
      if (!net::UriDecode(name.substr(4), &sum)) return false;
      info->checksums[sum] = value;
    } else if (name.starts_with("tag.")) {
      std::string tag;
      if (!net::UriDecode(name.substr(4), &tag)) return false;
      info->tags[tag] = value;
    } else if (name == "parts") {
      std::string_view rest = value;
      while (!rest.empty()) {
        size_t comma = rest.find(',');
        if (!ParseUint(rest.substr(0, comma), &n)) return false;
        info->part_sizes.push_back(n);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
    } else if (name == "sum-type") {
      info->checksum_type = value;
    } else if (name == "sum-algorithm") {
      info->checksum_algorithm = value;
    } else if (name == "part-sums") {
      std::string_view rest = value;
      while (!rest.empty()) {
        size_t comma = rest.find(',');
        info->part_checksums.emplace_back(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
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

// Direct I/O (O_DIRECT) moves a block from the caller's buffer to the disk without copying it
// into the page cache, which on this kind of machine costs more CPU than the disk takes to
// write it. It needs the buffer, the length and the file offset aligned to the device's block;
// 4 KiB covers every device we meet.
constexpr size_t kDirectAlign = 4096;

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
  // Bytes appended so far.
  uint64_t size() const { return size_; }
  // Records n bytes appended to fd() by the kernel (copy_file_range) rather than by Append.
  void CountCopied(size_t n) { size_ += n; }
  // Asks for direct I/O for the appends that follow. Advisory: false (and buffered appends)
  // where the filesystem does not support it (tmpfs, some overlays).
  bool StartDirect() {
    int flags = ::fcntl(fd_, F_GETFL);
    direct_ = flags >= 0 && ::fcntl(fd_, F_SETFL, flags | O_DIRECT) == 0;
    return direct_;
  }
  bool direct() const { return direct_; }
  // Appends data: directly when direct I/O was started and data is aligned for it; otherwise
  // (an object's unaligned tail, the trailer) through the page cache from then on.
  Status Append(const char* data, size_t n) {
    while (n > 0) {
      if (direct_ && !DirectFits(data, n)) EndDirect();
      ssize_t w = ::write(fd_, data, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        // A filesystem may accept O_DIRECT at fcntl() and refuse it at write(): buffered then.
        if (errno == EINVAL && direct_) {
          EndDirect();
          continue;
        }
        return Errno("writing", path_);
      }
      data += w;
      n -= static_cast<size_t>(w);
      size_ += static_cast<uint64_t>(w);
    }
    return Status::Ok();
  }
  // One fsync for everything appended, direct or not (it also commits the file's new extents).
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
  bool DirectFits(const char* data, size_t n) const {
    return reinterpret_cast<uintptr_t>(data) % kDirectAlign == 0 && n % kDirectAlign == 0 &&
           size_ % kDirectAlign == 0;
  }
  void EndDirect() {
    int flags = ::fcntl(fd_, F_GETFL);
    if (flags >= 0) (void)::fcntl(fd_, F_SETFL, flags & ~O_DIRECT);
    direct_ = false;
  }

  int fd_;
  std::string path_;
  uint64_t size_ = 0;
  bool direct_ = false;
  bool committed_ = false;
};

struct StreamedBody {
  uint64_t size = 0;
  std::string md5;  // raw
};

// The ingest path. Three stages overlap, each on its own thread, over a ring of kIngestBlocks
// blocks allocated once per body (aligned for direct I/O):
//   - the calling thread fills a block from the body with large reads (the body source hashes
//     SHA-256 over those bytes as they arrive when the payload is signed);
//   - a hashing thread adds each filled block to the MD5 (the ETag);
//   - a writing thread writes each filled block to the temp file in one direct write.
// A block is filled again once both have finished with it. So receiving, MD5 and the disk run
// at the same time, every byte is hashed where it lies, and the only copy is the kernel's from
// the socket into the block. The single fsync happens at the commit. A body that fits in one
// block is hashed and written inline, without threads.
constexpr size_t kIngestBlock = 1 << 20;
constexpr size_t kIngestBlocks = 4;
static_assert(kIngestBlock % kDirectAlign == 0);
// When the filesystem refuses direct I/O, writeback of what was written starts every this many
// bytes (sync_file_range), so that the fsync at the commit finds little left to do.
constexpr uint64_t kWritebackStep = 8 << 20;

// Writes blocks through the page cache when direct I/O is not available, starting writeback
// as it goes.
Status WriteBlock(TempFile& tmp, const char* data, size_t n, uint64_t* writeback_started) {
  SLIPWAY_RETURN_IF_ERROR(tmp.Append(data, n));
  if (!tmp.direct() && tmp.size() - *writeback_started >= kWritebackStep) {
    // Advisory: a failure here only means the fsync does all the work.
    (void)::sync_file_range(tmp.fd(), static_cast<off_t>(*writeback_started),
                            static_cast<off_t>(tmp.size() - *writeback_started),
                            SYNC_FILE_RANGE_WRITE);
    *writeback_started = tmp.size();
  }
  return Status::Ok();
}

class IngestPipeline {
 public:
  explicit IngestPipeline(TempFile& tmp)
      : tmp_(tmp),
        storage_(static_cast<char*>(::operator new[](kIngestBlock * kIngestBlocks,
                                                     std::align_val_t{kDirectAlign}))) {}
  ~IngestPipeline() { Cancel(); }
  IngestPipeline(const IngestPipeline&) = delete;
  IngestPipeline& operator=(const IngestPipeline&) = delete;

  // The block the reader fills next (the first one is free before Start).
  char* next_block() { return Block(filled_); }

  // Hashes and writes the first block on the calling thread: the whole body was that block.
  Status ConsumeInline(size_t n) {
    md5_.Update(Block(0), n);
    uint64_t writeback = 0;
    return WriteBlock(tmp_, Block(0), n, &writeback);
  }

  void Start() {
    (void)tmp_.StartDirect();
    hasher_ = std::thread([this] {
      Run(&hashed_, [this](const char* b, size_t n) {
        md5_.Update(b, n);
        return Status::Ok();
      });
    });
    writer_ = std::thread([this] {
      uint64_t writeback = 0;
      Run(&written_, [&](const char* b, size_t n) { return WriteBlock(tmp_, b, n, &writeback); });
    });
  }

  // Hands the block from next_block() on with n bytes in it, then waits until the block after
  // it is free to fill (or the writer failed: its error).
  Status Publish(size_t n) {
    std::unique_lock lock(mu_);
    sizes_[filled_ % kIngestBlocks] = n;
    ++filled_;
    cv_.notify_all();
    cv_.wait(lock, [&] {
      return !error_.ok() || filled_ - std::min(hashed_, written_) < kIngestBlocks;
    });
    return error_;
  }

  // Waits until every published block is hashed and written and stops the threads.
  Status Finish() {
    Stop(false);
    return error_;
  }
  // Stops without finishing what is left (the body failed; nothing will be kept).
  void Cancel() { Stop(true); }

  std::string FinishMd5() { return md5_.Finish(); }

 private:
  char* Block(uint64_t seq) { return storage_.get() + (seq % kIngestBlocks) * kIngestBlock; }

  // One consumer's loop: takes the published blocks in order, advancing *done past each.
  template <typename Fn>
  void Run(uint64_t* done, Fn consume) {
    for (;;) {
      uint64_t seq;
      size_t n;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return *done < filled_ || stopping_ || !error_.ok(); });
        if (!error_.ok() || *done == filled_) return;
        seq = *done;
        n = sizes_[seq % kIngestBlocks];
      }
      Status st = consume(Block(seq), n);
      {
        std::lock_guard lock(mu_);
        if (!st.ok() && error_.ok()) error_ = st;
        ++*done;
      }
      cv_.notify_all();
    }
  }

  void Stop(bool abandon) {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      if (abandon && error_.ok()) error_ = Status::Canceled("the body was abandoned");
    }
    cv_.notify_all();
    if (hasher_.joinable()) hasher_.join();
    if (writer_.joinable()) writer_.join();
  }

  struct AlignedFree {
    void operator()(char* p) const { ::operator delete[](p, std::align_val_t{kDirectAlign}); }
  };

  TempFile& tmp_;
  std::unique_ptr<char[], AlignedFree> storage_;
  Md5 md5_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t sizes_[kIngestBlocks] = {};
  uint64_t filled_ = 0;   // blocks published by the reader
  uint64_t hashed_ = 0;   // of those, added to the MD5
  uint64_t written_ = 0;  // of those, written
  bool stopping_ = false;
  Status error_;
  std::thread hasher_;
  std::thread writer_;
};

// Fills buf from the body until it is full or the body ends: the bytes in it, or an error.
Result<size_t> FillBlock(const BodySource& body, char* buf, size_t size, bool* ended) {
  size_t filled = 0;
  while (filled < size) {
    SLIPWAY_ASSIGN_OR_RETURN(size_t n, body(buf + filled, size - filled));
    if (n == 0) {
      *ended = true;
      break;
    }
    filled += n;
  }
  return filled;
}

// Copies a body into the temp file, hashing it, refusing it when it grows past max_size.
Result<StreamedBody> StreamBody(const BodySource& body, TempFile& tmp, uint64_t max_size,
                                const std::optional<std::string>& expected_md5) {
  IngestPipeline pipeline(tmp);
  StreamedBody out;
  auto too_large = [&] {
    return Status::ResourceExhausted(fmt::format(
        "the body is larger than the store's limit of {} bytes; upload a smaller object or "
        "raise --max-object-size",
        max_size));
  };
  bool ended = false;
  SLIPWAY_ASSIGN_OR_RETURN(size_t n,
                           FillBlock(body, pipeline.next_block(), kIngestBlock, &ended));
  out.size = n;
  if (out.size > max_size) return too_large();
  if (ended) {
    SLIPWAY_RETURN_IF_ERROR(pipeline.ConsumeInline(n));
  } else {
    pipeline.Start();
    while (n > 0) {
      SLIPWAY_RETURN_IF_ERROR(pipeline.Publish(n));
      if (ended) break;
      SLIPWAY_ASSIGN_OR_RETURN(n, FillBlock(body, pipeline.next_block(), kIngestBlock, &ended));
      out.size += n;
      if (out.size > max_size) return too_large();
    }
    SLIPWAY_RETURN_IF_ERROR(pipeline.Finish());
  }
  out.md5 = pipeline.FinishMd5();
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

}  // namespace

bool EtagListMatches(std::string_view list, std::string_view etag) {
  std::string_view want = Unquote(etag);
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == "*" || Unquote(item) == want) return true;
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  return false;
}

namespace {

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
  for (std::string_view reserved : {"xn--", "sthree-", "amzn-s3-demo-"}) {
    if (name.starts_with(reserved)) {
      return bad(fmt::format("it starts with the reserved prefix {}", reserved));
    }
  }
  for (std::string_view reserved : {"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"}) {
    if (name.ends_with(reserved)) {
      return bad(fmt::format("it ends with the reserved suffix {}", reserved));
    }
  }
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
  std::map<std::string, std::string> tags;  // bucket tagging
  bool deleted = false;

  std::string ObjectPath(std::string_view key) const {
    std::string h = KeyHash(key);
    return dir + "/" + h.substr(0, 2) + "/" + h;
  }

  // Whether a write of key may happen now; the caller holds mu.
  Status CheckConditionsLocked(std::string_view key, const WriteConditions& c) const {
    if (!c.if_none_match_any && !c.if_match) return Status::Ok();
    auto it = index.find(std::string(key));
    if (c.if_none_match_any && it != index.end()) {
      return Status::Aborted(
          "At least one of the pre-conditions you specified did not hold: If-None-Match: * and "
          "the key already exists; write to a new key or drop the condition");
    }
    if (c.if_match) {
      if (it == index.end()) return NoSuchKey(key);
      if (!EtagListMatches(*c.if_match, it->second.etag)) {
        return Status::Aborted(
            "At least one of the pre-conditions you specified did not hold: If-Match names an "
            "ETag the object no longer has; read it again and retry");
      }
    }
    return Status::Ok();
  }
  Status CheckConditions(std::string_view key, const WriteConditions& c) const {
    std::lock_guard lock(mu);
    return CheckConditionsLocked(key, c);
  }

  // Moves a finished temp file into its place and records it in the index, under the bucket's
  // lock so the index and the disk agree on which of two racing puts won, and so that
  // conditions are checked against the state the write replaces.
  Result<ObjectInfo> Commit(TempFile& tmp, ObjectInfo info,
                            const WriteConditions& conditions = {}) {
    std::string trailer = EncodeTrailer(info);
    SLIPWAY_RETURN_IF_ERROR(tmp.Append(trailer.data(), trailer.size()));
    SLIPWAY_RETURN_IF_ERROR(tmp.SyncAndClose());
    std::lock_guard lock(mu);
    if (deleted) return NoSuchBucket(name);
    SLIPWAY_RETURN_IF_ERROR(CheckConditionsLocked(info.key, conditions));
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
    // Completions are remembered for retries for a day.
    std::error_code mec;
    auto done = fs::last_write_time(e.path() / kCompletedFile, mec);
    if (!mec && fs::file_time_type::clock::now() - done > kCompletedKept) {
      fs::remove_all(e.path(), ec);
    }
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
    {
      std::ifstream in(bucket->dir + "/" + kBucketTagsFile, std::ios::binary);
      std::string text((std::istreambuf_iterator<char>(in)), {});
      ObjectInfo tagged;
      if (in && DecodeHeader(text, &tagged)) bucket->tags = std::move(tagged.tags);
    }
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

Status ObjectStore::SetBucketTags(std::string_view name,
                                  const std::map<std::string, std::string>& tags) {
  auto bucket = FindBucket(name);
  if (!bucket) return NoSuchBucket(name);
  // Tags travel in the same "tag.<name>=<value>" lines as an object's trailer.
  ObjectInfo holder;
  holder.tags = tags;
  std::string text = EncodeHeader(holder);
  SLIPWAY_ASSIGN_OR_RETURN(auto tmp, TempFile::Create(options_.data_dir + "/tmp"));
  SLIPWAY_RETURN_IF_ERROR(tmp->Append(text.data(), text.size()));
  SLIPWAY_RETURN_IF_ERROR(tmp->SyncAndClose());
  std::lock_guard lock(bucket->mu);
  if (bucket->deleted) return NoSuchBucket(name);
  SLIPWAY_RETURN_IF_ERROR(tmp->RenameTo(bucket->dir + "/" + kBucketTagsFile));
  SLIPWAY_RETURN_IF_ERROR(FsyncDir(bucket->dir));
  bucket->tags = tags;
  return Status::Ok();
}

Result<std::map<std::string, std::string>> ObjectStore::BucketTags(std::string_view name) const {
  auto bucket = FindBucket(name);
  if (!bucket) return NoSuchBucket(name);
  std::lock_guard lock(bucket->mu);
  return bucket->tags;
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
  // Checked before the body too, so a refused write does not upload it first.
  SLIPWAY_RETURN_IF_ERROR(bucket->CheckConditions(key, options.conditions));
  SLIPWAY_ASSIGN_OR_RETURN(auto tmp, TempFile::Create(options_.data_dir + "/tmp"));
  SLIPWAY_ASSIGN_OR_RETURN(auto streamed,
                           StreamBody(body, *tmp, options_.max_object_size, options.expected_md5));
  ObjectInfo info;
  info.key = std::string(key);
  info.size = streamed.size;
  info.etag = Quote(HexEncode(streamed.md5));
  info.content_type = NormalizeContentType(options.content_type);
  info.metadata = options.metadata;
  info.headers = options.headers;
  info.tags = options.tags;
  if (options.checksums) info.checksums = options.checksums();
  info.last_modified = Now();
  return bucket->Commit(*tmp, std::move(info), options.conditions);
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

Status ObjectStore::DeleteObject(std::string_view bucket_name, std::string_view key,
                                 const DeleteConditions& conditions) {
  SLIPWAY_RETURN_IF_ERROR(ValidateObjectKey(key));
  auto bucket = FindBucket(bucket_name);
  if (!bucket) return NoSuchBucket(bucket_name);
  std::lock_guard lock(bucket->mu);
  if (conditions.any()) {
    auto it = bucket->index.find(std::string(key));
    if (it == bucket->index.end()) return NoSuchKey(key);
    const ObjectInfo& cur = it->second;
    auto seconds = [](system_clock::time_point t) {
      return std::chrono::floor<std::chrono::seconds>(t);
    };
    bool holds = (!conditions.if_match || EtagListMatches(*conditions.if_match, cur.etag)) &&
                 (!conditions.last_modified ||
                  seconds(*conditions.last_modified) == seconds(cur.last_modified)) &&
                 (!conditions.size || *conditions.size == cur.size);
    if (!holds) {
      return Status::Aborted(
          "At least one of the pre-conditions you specified did not hold; the object was not "
          "deleted (read it again to see its ETag, size and last-modified time)");
    }
  }
  std::string path = bucket->ObjectPath(key);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Errno("deleting", path);
  }
  bucket->index.erase(std::string(key));
  return FsyncDir(fs::path(path).parent_path().string());
}

namespace {

// Streams what a reader serves into a temp file.
Status CopyObjectData(ObjectReader& reader, TempFile& out) {
  std::vector<char> buf(kCopyBuffer);
  for (;;) {
    SLIPWAY_ASSIGN_OR_RETURN(size_t n, reader.Read(buf.data(), buf.size()));
    if (n == 0) return Status::Ok();
    SLIPWAY_RETURN_IF_ERROR(out.Append(buf.data(), n));
  }
}

}  // namespace

Result<ObjectInfo> ObjectStore::SetObjectTags(std::string_view bucket_name, std::string_view key,
                                              std::map<std::string, std::string> tags) {
  SLIPWAY_ASSIGN_OR_RETURN(ObjectReader reader, GetObject(bucket_name, key));
  auto bucket = FindBucket(bucket_name);
  if (!bucket) return NoSuchBucket(bucket_name);
  ObjectInfo info = reader.info();
  info.tags = std::move(tags);
  SLIPWAY_ASSIGN_OR_RETURN(auto tmp, TempFile::Create(options_.data_dir + "/tmp"));
  SLIPWAY_RETURN_IF_ERROR(CopyObjectData(reader, *tmp));
  WriteConditions same;
  same.if_match = info.etag;
  return bucket->Commit(*tmp, std::move(info), same);
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
  ObjectInfo info;  // key, content type, metadata, headers; last_modified: when initiated
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
    if (n > 0) {
      out.CountCopied(static_cast<size_t>(n));
      continue;
    }
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

namespace {

Result<UploadDescription> ReadUpload(const std::string& dir) {
  std::ifstream in(dir + "/upload", std::ios::binary);
  if (!in) return Status::NotFound(dir + " holds no upload");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  UploadDescription u;
  if (!DecodeUpload(text, &u)) return Status::DataLoss(dir + "/upload is damaged");
  return u;
}

// The object a completed upload made, if it completed.
std::optional<ObjectInfo> ReadCompleted(const std::string& dir) {
  std::ifstream in(dir + "/" + kCompletedFile, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), {});
  ObjectInfo info;
  if (!DecodeHeader(text, &info)) return std::nullopt;
  return info;
}

}  // namespace

Result<std::string> ObjectStore::UploadDir(std::string_view bucket, std::string_view key,
                                           std::string_view upload_id) const {
  // Ids are ours: 32 hex digits. Anything else cannot name a directory of ours.
  if (upload_id.size() != 32 || !IsHex(upload_id)) return NoSuchUpload(upload_id);
  std::string dir = options_.data_dir + "/uploads/" + std::string(upload_id);
  auto u = ReadUpload(dir);
  if (!u.ok() || u->bucket != bucket || u->info.key != key) return NoSuchUpload(upload_id);
  if (fs::exists(dir + "/" + kCompletedFile)) return NoSuchUpload(upload_id);
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
  u.info.headers = options.headers;
  u.info.tags = options.tags;
  u.info.checksum_algorithm = options.checksum_algorithm;
  u.info.checksum_type = options.checksum_type;
  u.info.last_modified = Now();
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
  if (options.checksums) info.checksums = options.checksums();
  std::string trailer = EncodeTrailer(info);
  SLIPWAY_RETURN_IF_ERROR(tmp->Append(trailer.data(), trailer.size()));
  SLIPWAY_RETURN_IF_ERROR(tmp->SyncAndClose());
  if (auto st = tmp->RenameTo(dir + "/" + PartFileName(part_number)); !st.ok()) {
    return st.code() == Code::kNotFound ? NoSuchUpload(upload_id) : st;
  }
  SLIPWAY_RETURN_IF_ERROR(FsyncDir(dir));
  return PartInfo{part_number, info.size, info.etag, info.last_modified, info.checksums};
}

Result<ObjectInfo> ObjectStore::CompleteMultipartUpload(std::string_view bucket_name,
                                                        std::string_view key,
                                                        std::string_view upload_id,
                                                        const std::vector<CompletedPart>& parts,
                                                        const WriteConditions& conditions,
                                                        const PartsChecksum& checksum) {
  auto bucket = FindBucket(bucket_name);
  if (!bucket) return NoSuchBucket(bucket_name);
  if (upload_id.size() == 32 && IsHex(upload_id)) {
    std::string done_dir = options_.data_dir + "/uploads/" + std::string(upload_id);
    auto u = ReadUpload(done_dir);
    if (u.ok() && u->bucket == bucket_name && u->info.key == key) {
      if (auto done = ReadCompleted(done_dir)) return *done;
    }
  }
  SLIPWAY_ASSIGN_OR_RETURN(std::string dir, UploadDir(bucket_name, key, upload_id));
  if (parts.empty()) {
    return Status::InvalidArgument(
        "the part list is empty; list every uploaded part to complete the upload");
  }
  SLIPWAY_ASSIGN_OR_RETURN(UploadDescription u, ReadUpload(dir));
  SLIPWAY_RETURN_IF_ERROR(bucket->CheckConditions(key, conditions));

  // Validate everything before copying a byte.
  std::vector<std::unique_ptr<FdGuard>> fds;
  std::vector<uint64_t> sizes;
  std::vector<PartInfo> stored;
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
    stored.push_back(
        PartInfo{p.part_number, part.size, part.etag, part.last_modified, part.checksums});
    fds.push_back(std::move(fd));
  }
  AssembledChecksum sum;
  if (checksum) {
    SLIPWAY_ASSIGN_OR_RETURN(sum, checksum(parts, stored));
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
  info.part_sizes = sizes;
  info.checksum_algorithm.clear();
  info.checksums = std::move(sum.checksums);
  info.checksum_type = std::move(sum.checksum_type);
  info.part_checksums = std::move(sum.part_checksums);
  SLIPWAY_ASSIGN_OR_RETURN(ObjectInfo done, bucket->Commit(*tmp, std::move(info), conditions));
  // Remembered, without the parts, for a client that sends the same completion again.
  ObjectInfo record = done;
  record.part_sizes.clear();
  record.part_checksums.clear();
  std::string text = EncodeHeader(record);
  SLIPWAY_ASSIGN_OR_RETURN(auto marker, TempFile::Create(options_.data_dir + "/tmp"));
  SLIPWAY_RETURN_IF_ERROR(marker->Append(text.data(), text.size()));
  SLIPWAY_RETURN_IF_ERROR(marker->SyncAndClose());
  SLIPWAY_RETURN_IF_ERROR(marker->RenameTo(dir + "/" + kCompletedFile));
  for (const auto& p : parts) ::unlink((dir + "/" + PartFileName(p.part_number)).c_str());
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.starts_with("part-")) fs::remove(e.path(), ec);
  }
  return done;
}

Result<MultipartUploadInfo> ObjectStore::MultipartUpload(std::string_view bucket,
                                                        std::string_view key,
                                                        std::string_view upload_id) const {
  if (!BucketExists(bucket)) return NoSuchBucket(bucket);
  SLIPWAY_ASSIGN_OR_RETURN(std::string dir, UploadDir(bucket, key, upload_id));
  SLIPWAY_ASSIGN_OR_RETURN(UploadDescription u, ReadUpload(dir));
  return MultipartUploadInfo{u.info.key, std::string(upload_id), u.info.last_modified,
                             u.info.checksum_algorithm, u.info.checksum_type};
}

Result<ListPartsResult> ObjectStore::ListParts(std::string_view bucket, std::string_view key,
                                               std::string_view upload_id, int after,
                                               int max_parts) const {
  if (!BucketExists(bucket)) return NoSuchBucket(bucket);
  SLIPWAY_ASSIGN_OR_RETURN(std::string dir, UploadDir(bucket, key, upload_id));
  std::vector<int> numbers;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    uint64_t n = 0;
    if (name.size() == 10 && name.starts_with("part-") && ParseUint(name.substr(5), &n) &&
        static_cast<int>(n) > after) {
      numbers.push_back(static_cast<int>(n));
    }
  }
  std::sort(numbers.begin(), numbers.end());
  ListPartsResult out;
  if (auto u = ReadUpload(dir); u.ok()) {
    out.checksum_algorithm = u->info.checksum_algorithm;
    out.checksum_type = u->info.checksum_type;
  }
  max_parts = std::clamp(max_parts, 0, 1000);
  for (int n : numbers) {
    if (static_cast<int>(out.parts.size()) == max_parts) {
      out.is_truncated = true;
      break;
    }
    auto info = ReadTrailerAt(dir + "/" + PartFileName(n));
    if (!info.ok()) continue;  // replaced or aborted meanwhile
    out.parts.push_back(
        PartInfo{n, info->size, info->etag, info->last_modified, std::move(info->checksums)});
    out.next_part_number_marker = n;
  }
  return out;
}

Result<ListUploadsResult> ObjectStore::ListMultipartUploads(
    std::string_view bucket, const ListUploadsOptions& options) const {
  if (!BucketExists(bucket)) return NoSuchBucket(bucket);
  std::vector<MultipartUploadInfo> all;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.data_dir + "/uploads", ec)) {
    std::string dir = e.path().string();
    auto u = ReadUpload(dir);
    if (!u.ok() || u->bucket != bucket || fs::exists(dir + "/" + kCompletedFile)) continue;
    if (!u->info.key.starts_with(options.prefix)) continue;
    all.push_back({u->info.key, e.path().filename().string(), u->info.last_modified,
                   u->info.checksum_algorithm, u->info.checksum_type});
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return std::tie(a.key, a.initiated, a.upload_id) < std::tie(b.key, b.initiated, b.upload_id);
  });
  ListUploadsResult out;
  int max = std::clamp(options.max_uploads, 0, 1000);
  // With only a key marker, uploads of keys after it; with an upload id marker too, also the
  // marker key's uploads after that id.
  bool past_upload_marker = options.upload_id_marker.empty();
  for (const auto& u : all) {
    if (!options.key_marker.empty()) {
      if (u.key < options.key_marker) continue;
      if (u.key == options.key_marker) {
        if (options.upload_id_marker.empty()) continue;
        if (!past_upload_marker) {
          if (u.upload_id == options.upload_id_marker) past_upload_marker = true;
          continue;
        }
      }
    }
    std::string common;
    if (!options.delimiter.empty()) {
      size_t d = u.key.find(options.delimiter, options.prefix.size());
      if (d != std::string::npos) common = u.key.substr(0, d + options.delimiter.size());
    }
    if (!common.empty() && !out.common_prefixes.empty() && out.common_prefixes.back() == common) {
      continue;
    }
    if (static_cast<int>(out.uploads.size() + out.common_prefixes.size()) == max) {
      out.is_truncated = true;
      break;
    }
    if (!common.empty()) {
      out.common_prefixes.push_back(common);
      out.next_key_marker = common;
      out.next_upload_id_marker.clear();
    } else {
      out.uploads.push_back(u);
      out.next_key_marker = u.key;
      out.next_upload_id_marker = u.upload_id;
    }
  }
  return out;
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
