// Packaging a build context: a directory becomes the tar.gz the builder downloads.
//
// Promised:
//   - Docker's view of the context: `.dockerignore` applied with Docker's semantics (see
//     dockerignore.h); the Dockerfile and `.dockerignore` always included. A Dockerfile-specific
//     ignore file (`<dockerfile>.dockerignore`, e.g. `api/Dockerfile.dockerignore`) is used
//     instead of the root one when it exists, as BuildKit does.
//   - Checked before any work: the Dockerfile exists inside the context; nothing is written and
//     the sink is never called otherwise.
//   - Content-addressed: the archive's bytes depend only on the names, contents, permission bits
//     and symlink targets of what is included. Entries are sorted (byte order of names, each
//     directory before what it holds); modification times are fixed at 2000-01-01T00:00:00Z
//     (not 1970: pip and zip refuse timestamps before 1980); owners are uid/gid 0 with no
//     names, as Docker's CLI sends them. The same source packaged twice, on any machine, has
//     the same sha256, which makes `contexts/<project>/<sha256>.tar.gz` a cache key.
//   - Kept: regular files (a hard link is sent as a copy), directories, symlinks (stored, never
//     followed), permission bits with the executable bits. Skipped: sockets, FIFOs, devices.
//   - The format: a POSIX (pax) tar, gzip-compressed as a series of gzip members (one per
//     `block_size` bytes of tar), which gzip, GNU tar and Go's gzip reader (dockerd) read as one
//     stream.
//   - Memory flat whatever the context's size: no file and no archive is ever held whole; at
//     most about (2 * threads + 2) blocks are in flight.
//   - Fast: tar headers and file reads on one thread, igzip compression of independent blocks
//     on `threads` others, hashing and writing on the caller's thread.
//
// Thread-safety: PackageContext may be called from several threads at once; the sink is called
// from the calling thread only, in archive order.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace slipway::cli {

struct PackageOptions {
  // The Dockerfile, relative to the context directory (an absolute path must lie inside it).
  std::string dockerfile = "Dockerfile";
  // Where the archive goes: `output_path` when set (created or truncated; removed again when
  // packaging fails), else `sink`, called with consecutive pieces of the archive. A sink that
  // returns an error stops packaging and PackageContext returns that error.
  std::filesystem::path output_path;
  std::function<Status(std::string_view)> sink;
  // igzip level, 0 (fastest) to 3 (smallest). 2 measured best on the packaging benchmark: about
  // as fast as 1, archives ~2.5% smaller (~4% above `tar -czf` against ~6% for level 1). Like
  // block_size, it is part of the archive's identity.
  int level = 2;
  // Compression threads; 0 means one per core.
  int threads = 0;
  // Bytes of tar per gzip member; part of the archive's identity (changing it changes the
  // sha256), so leave it alone unless every producer of a cache changes it together.
  size_t block_size = 1 << 20;
};

struct ContextArchive {
  std::string sha256;         // lowercase hex of the compressed archive
  uint64_t size = 0;          // compressed bytes
  uint64_t tar_size = 0;      // uncompressed tar bytes
  uint64_t entries = 0;       // files, directories and symlinks in the archive
  std::string dockerfile;     // the Dockerfile's clean path relative to the context
};

// Packages the directory `context_dir` (see the promises above). Fails with:
//   NotFound: no Dockerfile at the given path, or no such context directory;
//   InvalidArgument: a Dockerfile path outside the context, or a malformed .dockerignore;
//   FailedPrecondition / Internal: an unreadable entry, a file that changed while it was read,
//   a write that failed; the message names the path.
Result<ContextArchive> PackageContext(const std::filesystem::path& context_dir,
                                      const PackageOptions& options);

}  // namespace slipway::cli
