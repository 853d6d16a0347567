#include "cli/context_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/crypto.h"
#include "cli/dockerignore.h"
#include "net/http.h"

namespace slipway::cli {
namespace {

namespace fs = std::filesystem;

// 2000-01-01T00:00:00Z: fixed so the archive depends on content only, and after 1980 because
// zip-based tools (pip wheels, jar) inside a build refuse older timestamps.
constexpr time_t kArchiveMtime = 946684800;
constexpr size_t kReadChunk = 256 * 1024;

std::string ErrnoText() { return std::strerror(errno); }

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// ---------------------------------------------------------------------------------------------
// The pipeline: a ring of blocks. The tar producer fills block n, compressors turn filled
// blocks into gzip members in any order, the writer hands members to the sink strictly in
// order. A block's slot is reused only after the writer is done with it, which bounds memory.

struct Slot {
  enum State { kFree, kFilled, kCompressing, kCompressed };
  State state = kFree;
  std::vector<unsigned char> raw;
  size_t raw_len = 0;
  std::vector<unsigned char> gz;
  size_t gz_len = 0;
};

class BlockRing {
 public:
  BlockRing(size_t slots, size_t block_size) : slots_(slots) {
    for (Slot& s : slots_) {
      s.raw.resize(block_size);
      // igzip's stateless mode never grows data by more than its stored-block framing.
      s.gz.resize(block_size + block_size / 1000 + 1024);
    }
  }

  size_t block_size() const { return slots_[0].raw.size(); }

  // Producer: the slot for block `seq`, once the writer has freed it; null when aborted.
  Slot* AcquireForFill(uint64_t seq) {
    std::unique_lock lock(mu_);
    Slot& s = slots_[seq % slots_.size()];
    cv_.wait(lock, [&] { return aborted_ || s.state == Slot::kFree; });
    if (aborted_) return nullptr;
    s.raw_len = 0;
    return &s;
  }
  void Publish(Slot* s) {
    std::lock_guard lock(mu_);
    s->state = Slot::kFilled;
    ++filled_;
    cv_.notify_all();
  }
  void FinishProducing() {
    std::lock_guard lock(mu_);
    producer_done_ = true;
    cv_.notify_all();
  }

  // Compressor: the next filled block to compress; null when there is none left.
  Slot* TakeForCompression() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return aborted_ || taken_ < filled_ || producer_done_; });
    if (aborted_ || taken_ == filled_) return nullptr;
    Slot& s = slots_[taken_++ % slots_.size()];
    s.state = Slot::kCompressing;
    return &s;
  }
  void Compressed(Slot* s) {
    std::lock_guard lock(mu_);
    s->state = Slot::kCompressed;
    cv_.notify_all();
  }

  // Writer: block `seq` once compressed; null at the end of the archive or when aborted.
  Slot* TakeForWriting(uint64_t seq) {
    std::unique_lock lock(mu_);
    Slot& s = slots_[seq % slots_.size()];
    cv_.wait(lock, [&] {
      return aborted_ || (seq < filled_ && s.state == Slot::kCompressed) ||
             (producer_done_ && seq == filled_);
    });
    if (aborted_ || seq == filled_) return nullptr;
    return &s;
  }
  void Written(Slot* s) {
    std::lock_guard lock(mu_);
    s->state = Slot::kFree;
    cv_.notify_all();
  }

  // Stops every party; the first error reported is the one PackageContext returns.
  void Abort(Status error) {
    std::lock_guard lock(mu_);
    if (error_.ok()) error_ = std::move(error);
    aborted_ = true;
    cv_.notify_all();
  }
  Status error() {
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Slot> slots_;
  uint64_t filled_ = 0;
  uint64_t taken_ = 0;
  bool producer_done_ = false;
  bool aborted_ = false;
  Status error_;
};

size_t LevelBufSize(int level) {
  switch (level) {
    case 1: return ISAL_DEF_LVL1_DEFAULT;
    case 2: return ISAL_DEF_LVL2_DEFAULT;
    case 3: return ISAL_DEF_LVL3_DEFAULT;
    default: return 0;
  }
}

// Each block becomes a complete gzip member: igzip's generic header (no name, mtime 0) keeps
// the bytes reproducible, and incompressible data comes out as stored blocks, not bigger.
void CompressBlocks(BlockRing* ring, int level) {
  std::vector<unsigned char> level_buf(LevelBufSize(level));
  while (Slot* s = ring->TakeForCompression()) {
    isal_zstream z;
    isal_deflate_stateless_init(&z);
    z.level = static_cast<uint32_t>(level);
    z.level_buf = level_buf.empty() ? nullptr : level_buf.data();
    z.level_buf_size = static_cast<uint32_t>(level_buf.size());
    z.gzip_flag = IGZIP_GZIP;
    z.end_of_stream = 1;
    z.flush = NO_FLUSH;
    z.next_in = s->raw.data();
    z.avail_in = static_cast<uint32_t>(s->raw_len);
    z.next_out = s->gz.data();
    z.avail_out = static_cast<uint32_t>(s->gz.size());
    int rc = isal_deflate_stateless(&z);
    if (rc != COMP_OK) {
      ring->Abort(Status::Internal("igzip failed to compress a block of the context (code " +
                                   std::to_string(rc) + "); report this as a slipway bug"));
      return;
    }
    s->gz_len = s->gz.size() - z.avail_out;
    ring->Compressed(s);
  }
}

// ---------------------------------------------------------------------------------------------
// The producer: walks the context in sorted order and writes tar entries through libarchive,
// whose output lands in ring blocks.

class TarProducer {
 public:
  TarProducer(BlockRing* ring, const DockerIgnore* ignore, std::string context_name)
      : ring_(ring), ignore_(ignore), context_name_(std::move(context_name)), buf_(kReadChunk) {}

  // Runs the whole walk; any failure is reported to the ring (which stops everyone).
  void Run(int root_fd) {
    Status st = RunInner(root_fd);
    if (!st.ok()) ring_->Abort(st);
    ring_->FinishProducing();
  }

  uint64_t tar_size() const { return tar_size_; }
  uint64_t entries() const { return entries_; }

 private:
  struct Dir {
    std::string path;
    mode_t mode;
    bool emitted;
  };

  Status RunInner(int root_fd) {
    std::unique_ptr<archive, decltype(&archive_write_free)> a(archive_write_new(), archive_write_free);
    archive_ = a.get();
    // Restricted pax: plain ustar headers unless a name or size needs an extended record.
    // No blocking: libarchive passes data straight through, and the archive ends right after
    // its end-of-archive marker.
    if (archive_write_set_format_pax_restricted(archive_) != ARCHIVE_OK ||
        archive_write_add_filter_none(archive_) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(archive_, 0) != ARCHIVE_OK ||
        archive_write_open(archive_, this, nullptr, &TarProducer::WriteCallback, nullptr) != ARCHIVE_OK) {
      return ArchiveError("starting the archive");
    }
    entry_.reset(archive_entry_new());
    SLIPWAY_RETURN_IF_ERROR(WalkDir(root_fd, ""));
    if (archive_write_close(archive_) != ARCHIVE_OK) return ArchiveError("finishing the archive");
    if (slot_ != nullptr && slot_->raw_len > 0) ring_->Publish(slot_);
    slot_ = nullptr;
    return Status::Ok();
  }

  static la_ssize_t WriteCallback(archive*, void* self, const void* data, size_t n) {
    auto* p = static_cast<TarProducer*>(self);
    return p->Append(static_cast<const unsigned char*>(data), n) ? static_cast<la_ssize_t>(n) : -1;
  }

  bool Append(const unsigned char* data, size_t n) {
    tar_size_ += n;
    while (n > 0) {
      if (slot_ == nullptr && (slot_ = ring_->AcquireForFill(next_seq_++)) == nullptr) return false;
      size_t room = slot_->raw.size() - slot_->raw_len;
      size_t take = std::min(room, n);
      std::memcpy(slot_->raw.data() + slot_->raw_len, data, take);
      slot_->raw_len += take;
      data += take;
      n -= take;
      if (slot_->raw_len == slot_->raw.size()) {
        ring_->Publish(slot_);
        slot_ = nullptr;
      }
    }
    return true;
  }

  Status ArchiveError(std::string_view doing) {
    Status ring_error = ring_->error();
    if (!ring_error.ok()) return ring_error;  // the real cause, not libarchive's echo of it
    const char* why = archive_error_string(archive_);
    return Status::Internal(std::string(doing) + " failed: " + (why ? why : "unknown libarchive error") +
                            "; report this as a slipway bug");
  }

  Status ReadError(std::string_view path) {
    return Status::FailedPrecondition("cannot read " + Quote(path) + " in " + context_name_ + ": " +
                                      ErrnoText() + "; fix its permissions or list it in .dockerignore");
  }

  // Directory entries the ignore rules excluded but the walk entered because an exception may
  // re-include something below; they are written just before the first entry that needs them,
  // so an extracted tree has them with their own permissions.
  Status FlushPendingDirs() {
    for (Dir& d : pending_) {
      if (d.emitted) continue;
      SLIPWAY_RETURN_IF_ERROR(WriteHeader(d.path + "/", AE_IFDIR, d.mode, 0, nullptr));
      d.emitted = true;
    }
    return Status::Ok();
  }

  Status WriteHeader(const std::string& name, unsigned type, mode_t mode, int64_t size, const char* link) {
    archive_entry_clear(entry_.get());
    // A name that is not UTF-8 is stored as its bytes (pax hdrcharset=BINARY): libarchive's
    // UTF-8 setter leaves such an entry without a path, and writing it then crashed.
    if (net::ToValidUtf8(name) == name) {
      archive_entry_set_pathname_utf8(entry_.get(), name.c_str());
    } else {
      archive_entry_copy_pathname(entry_.get(), name.c_str());
    }
    archive_entry_set_filetype(entry_.get(), type);
    archive_entry_set_perm(entry_.get(), mode & 07777);
    archive_entry_set_size(entry_.get(), size);
    archive_entry_set_mtime(entry_.get(), kArchiveMtime, 0);
    archive_entry_set_uid(entry_.get(), 0);
    archive_entry_set_gid(entry_.get(), 0);
    if (link != nullptr && net::ToValidUtf8(link) == link) {
      archive_entry_set_symlink_utf8(entry_.get(), link);
    } else if (link != nullptr) {
      archive_entry_copy_symlink(entry_.get(), link);
    }
    if (archive_write_header(archive_, entry_.get()) < ARCHIVE_WARN) {
      return ArchiveError("writing the tar header of " + Quote(name));
    }
    ++entries_;
    return Status::Ok();
  }

  Status WalkDir(int dir_fd, const std::string& dir_path) {
    std::vector<std::string> names;
    {
      int fd = dup(dir_fd);
      DIR* d = fd < 0 ? nullptr : fdopendir(fd);
      if (d == nullptr) {
        if (fd >= 0) close(fd);
        return ReadError(dir_path.empty() ? "." : dir_path);
      }
      errno = 0;
      while (dirent* e = readdir(d)) {
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
      }
      bool failed = errno != 0;
      closedir(d);
      if (failed) return ReadError(dir_path.empty() ? "." : dir_path);
    }
    std::sort(names.begin(), names.end());

    for (const std::string& name : names) {
      const std::string path = dir_path.empty() ? name : dir_path + "/" + name;
      struct stat st;
      if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // deleted since the listing: it is simply not in the context
        return ReadError(path);
      }
      const bool excluded = ignore_->Excludes(path);
      if (S_ISDIR(st.st_mode)) {
        if (excluded && !ignore_->MayReincludeBelow(path)) continue;
        int sub = openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) return ReadError(path);
        pending_.push_back({path, st.st_mode, false});
        Status s = excluded ? Status::Ok() : FlushPendingDirs();
        if (s.ok()) s = WalkDir(sub, path);
        close(sub);
        pending_.pop_back();
        SLIPWAY_RETURN_IF_ERROR(s);
        continue;
      }
      if (excluded) continue;
      if (S_ISREG(st.st_mode)) {
        SLIPWAY_RETURN_IF_ERROR(FlushPendingDirs());
        SLIPWAY_RETURN_IF_ERROR(WriteFile(dir_fd, name, path));
      } else if (S_ISLNK(st.st_mode)) {
        SLIPWAY_RETURN_IF_ERROR(FlushPendingDirs());
        std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
        ssize_t n = readlinkat(dir_fd, name.c_str(), target.data(), target.size());
        if (n < 0) return ReadError(path);
        target.resize(static_cast<size_t>(n));
        SLIPWAY_RETURN_IF_ERROR(WriteHeader(path, AE_IFLNK, 0777, 0, target.c_str()));
      }
      // Sockets, FIFOs and devices have no place in a build context; Docker cannot COPY them
      // usefully either.
    }
    return Status::Ok();
  }

  Status WriteFile(int dir_fd, const std::string& name, const std::string& path) {
    int fd = openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ReadError(path);
    struct Closer {
      int fd;
      ~Closer() { close(fd); }
    } closer{fd};
    // The size in the header is the size when the file was opened; bytes appended later are
    // not sent, so the archive stays consistent with its headers.
    struct stat st;
    if (fstat(fd, &st) != 0) return ReadError(path);
    SLIPWAY_RETURN_IF_ERROR(WriteHeader(path, AE_IFREG, st.st_mode, st.st_size, nullptr));
    uint64_t left = static_cast<uint64_t>(st.st_size);
    while (left > 0) {
      ssize_t n = read(fd, buf_.data(), std::min<uint64_t>(buf_.size(), left));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ReadError(path);
      }
      if (n == 0) {
        return Status::FailedPrecondition(Quote(path) + " in " + context_name_ + " shrank from " +
                                          std::to_string(st.st_size) + " bytes while it was being packaged; "
                                          "run the command again once nothing is writing to it, or list it "
                                          "in .dockerignore");
      }
      if (archive_write_data(archive_, buf_.data(), static_cast<size_t>(n)) != n) {
        return ArchiveError("writing " + Quote(path));
      }
      left -= static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }

  BlockRing* ring_;
  const DockerIgnore* ignore_;
  std::string context_name_;
  std::vector<char> buf_;
  archive* archive_ = nullptr;
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry_{nullptr, archive_entry_free};
  Slot* slot_ = nullptr;
  uint64_t next_seq_ = 0;
  std::vector<Dir> pending_;
  uint64_t tar_size_ = 0;
  uint64_t entries_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Checks done before any output exists.

// The Dockerfile's clean path relative to the context, which must hold it as a file reached
// through real directories (a symlinked directory is sent as a link, so a Dockerfile behind it
// would not be in the archive).
Result<std::string> ResolveDockerfile(const fs::path& context_dir, const std::string& dockerfile) {
  const std::string context_name = context_dir.string();
  std::string rel;
  if (fs::path(dockerfile).is_absolute()) {
    std::error_code ec;
    fs::path base = fs::absolute(context_dir, ec).lexically_normal();
    rel = fs::path(dockerfile).lexically_normal().lexically_relative(base).generic_string();
    if (rel.empty()) rel = "..";
  } else {
    rel = dockerfile;
  }
  rel = CleanPath(rel);
  if (rel == "." || rel == ".." || rel.starts_with("../") || rel.starts_with("/")) {
    return Status::InvalidArgument("the Dockerfile " + Quote(dockerfile) + " is outside the context " +
                                   context_name + "; move it into that directory or pass a context "
                                   "directory that contains it");
  }
  const std::string missing = "no Dockerfile at " + Quote(rel) + " in " + context_name + " (use --dockerfile)";
  size_t slash = 0;
  while ((slash = rel.find('/', slash)) != std::string::npos) {
    struct stat st;
    const std::string parent = rel.substr(0, slash++);
    if (lstat((context_dir / parent).c_str(), &st) != 0) return Status::NotFound(missing);
    if (S_ISLNK(st.st_mode)) {
      return Status::InvalidArgument("the Dockerfile path " + Quote(rel) + " goes through the symlink " +
                                     Quote(parent) + ", which the archive keeps as a link; pass the "
                                     "Dockerfile's real location inside " + context_name + " to --dockerfile");
    }
    if (!S_ISDIR(st.st_mode)) return Status::NotFound(missing);
  }
  struct stat st;
  if (stat((context_dir / rel).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return Status::NotFound(missing);
  // The archive keeps a symlink as a link: one whose file is outside the context would reach
  // the builder as a link to nothing.
  if (lstat((context_dir / rel).c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    std::error_code ec;
    const fs::path target = fs::canonical(context_dir / rel, ec);
    const fs::path root = fs::canonical(context_dir, ec);
    const std::string inside = target.lexically_relative(root).generic_string();
    if (ec || inside.empty() || inside.starts_with("..")) {
      return Status::InvalidArgument("the Dockerfile " + Quote(rel) + " is a symlink to " +
                                     Quote(target.string()) + ", outside " + context_name +
                                     "; the archive keeps links as links, so copy the file into "
                                     "the context or pass its path to --dockerfile");
    }
  }
  return rel;
}

class OutputFile {
 public:
  explicit OutputFile(fs::path path) : path_(std::move(path)) {}
  ~OutputFile() {
    if (fd_ >= 0) close(fd_);
    if (!kept_ && opened_) unlink(path_.c_str());
  }
  Status Open() {
    fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return Status::FailedPrecondition("cannot create " + path_.string() + ": " + ErrnoText() +
                                                   "; choose a writable output location");
    opened_ = true;
    return Status::Ok();
  }
  Status Write(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::Internal("writing " + path_.string() + " failed: " + ErrnoText() +
                                         "; free some space or choose another output location");
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }
  Status Close() {
    int fd = fd_;
    fd_ = -1;
    if (close(fd) != 0) return Status::Internal("closing " + path_.string() + " failed: " + ErrnoText() +
                                                "; free some space or choose another output location");
    kept_ = true;
    return Status::Ok();
  }

 private:
  fs::path path_;
  int fd_ = -1;
  bool opened_ = false;
  bool kept_ = false;
};

}  // namespace

Result<ContextArchive> PackageContext(const fs::path& context_dir, const PackageOptions& options) {
  const std::string context_name = context_dir.string();
  struct stat st;
  if (stat(context_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::NotFound("the context directory " + context_name +
                            " does not exist or is not a directory; pass the directory that holds your app");
  }
  if (options.level < 0 || options.level > ISAL_DEF_MAX_LEVEL || options.block_size < 4096 ||
      options.block_size > (1u << 30) || (options.output_path.empty() && !options.sink)) {
    return Status::InvalidArgument(
        "packaging options need a level from 0 to 3, a block size from 4 KiB to 1 GiB, and an output "
        "path or a sink; fix the caller");
  }
  SLIPWAY_ASSIGN_OR_RETURN(std::string dockerfile, ResolveDockerfile(context_dir, options.dockerfile));

  // A Dockerfile-specific ignore file wins over the root one, as in BuildKit.
  const std::string specific_ignore = dockerfile + ".dockerignore";
  std::error_code ec;
  const bool use_specific = fs::is_regular_file(context_dir / specific_ignore, ec);
  SLIPWAY_ASSIGN_OR_RETURN(DockerIgnore ignore,
                           DockerIgnore::Load(context_dir / (use_specific ? specific_ignore : ".dockerignore")));
  ignore.AlwaysInclude(".dockerignore");
  ignore.AlwaysInclude(dockerfile);
  if (use_specific) ignore.AlwaysInclude(specific_ignore);

  int root_fd = open(context_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) {
    return Status::FailedPrecondition("cannot open the context directory " + context_name + ": " + ErrnoText() +
                                      "; fix its permissions");
  }
  struct RootCloser {
    int fd;
    ~RootCloser() { close(fd); }
  } root_closer{root_fd};

  std::unique_ptr<OutputFile> file;
  if (!options.output_path.empty()) {
    file = std::make_unique<OutputFile>(options.output_path);
    SLIPWAY_RETURN_IF_ERROR(file->Open());
  }

  const int threads = options.threads > 0 ? options.threads
                                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  BlockRing ring(2 * static_cast<size_t>(threads) + 2, options.block_size);
  TarProducer producer(&ring, &ignore, context_name);
  std::vector<std::thread> workers;
  workers.emplace_back([&] { producer.Run(root_fd); });
  for (int i = 0; i < threads; ++i) workers.emplace_back(CompressBlocks, &ring, options.level);

  Sha256Stream sha;
  uint64_t size = 0;
  for (uint64_t seq = 0;; ++seq) {
    Slot* s = ring.TakeForWriting(seq);
    if (s == nullptr) break;
    std::string_view member(reinterpret_cast<const char*>(s->gz.data()), s->gz_len);
    sha.Update(member);
    size += member.size();
    Status written = file ? file->Write(member) : options.sink(member);
    if (!written.ok()) {
      ring.Abort(written);
      break;
    }
    ring.Written(s);
  }
  for (std::thread& t : workers) t.join();
  SLIPWAY_RETURN_IF_ERROR(ring.error());
  if (file) SLIPWAY_RETURN_IF_ERROR(file->Close());

  ContextArchive out;
  out.sha256 = sha.FinishHex();
  out.size = size;
  out.tar_size = producer.tar_size();
  out.entries = producer.entries();
  out.dockerfile = dockerfile;
  return out;
}

}  // namespace slipway::cli
