#include "cli/context_upload.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "cli/context_archive.h"
#include "cli/interrupt.h"
#include "cli/progress.h"
#include "net/http_client.h"
#include "slipway/ctrl/v1/build.pb.h"
#include "storage/s3_client.h"

namespace slipway::cli {
namespace {

namespace fs = std::filesystem;
namespace pb = slipway::ctrl::v1;

// A file under $TMPDIR, removed on destruction.
class TemporaryArchive {
 public:
  TemporaryArchive() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                       "/slipway-context-XXXXXX.tar.gz";
    int fd = mkstemps(tmpl.data(), 7);
    if (fd >= 0) {
      close(fd);
      path_ = tmpl;
    }
  }
  ~TemporaryArchive() {
    std::error_code ec;
    if (!path_.empty()) fs::remove(path_, ec);
  }
  TemporaryArchive(const TemporaryArchive&) = delete;
  TemporaryArchive& operator=(const TemporaryArchive&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string DockerfileMissing(const ProjectSettings& s) {
  return fmt::format(
      "no Dockerfile at \"{}\" in {} (use --dockerfile, or set build.dockerfile "
      "in slipway.toml)",
      s.dockerfile, s.context_dir.string());
}

// One attempt at the PUT; the response status and body, or a transport failure.
Result<net::ClientResponse> PutOnce(net::HttpClient& http, const std::string& url,
                                    const net::Headers& headers, const fs::path& file,
                                    uint64_t size, UploadProgress& progress) {
  std::FILE* in = std::fopen(file.c_str(), "rb");
  if (in == nullptr) {
    return Status::Internal(fmt::format("cannot reopen the packaged context {}", file.string()));
  }
  uint64_t sent = 0;
  net::ClientRequest req;
  req.method = "PUT";
  req.url = url;
  req.headers = headers;
  req.body_size = size;
  req.body_source = [&](char* buf, size_t n) -> Result<size_t> {
    if (Interrupted()) return Status::Canceled("interrupted");
    size_t got = std::fread(buf, 1, n, in);
    if (got == 0 && std::ferror(in)) {
      return Status::Internal(fmt::format("reading {} failed", file.string()));
    }
    sent += got;
    progress.Update(sent, std::chrono::steady_clock::now());
    return got;
  };
  req.idempotent = false;  // a streamed body cannot be replayed; PutToPresignedUrl retries
  req.max_attempts = 1;
  req.max_response_bytes = 1 << 20;
  auto resp = http.Do(req);
  std::fclose(in);
  return resp;
}

}  // namespace

Status CheckDockerfile(const ProjectSettings& s) {
  std::error_code ec;
  if (!fs::is_regular_file(s.context_dir / s.dockerfile, ec)) {
    return Status::NotFound(DockerfileMissing(s));
  }
  return Status::Ok();
}

Status PutToPresignedUrl(const std::string& url, const net::Headers& headers,
                         const fs::path& file, uint64_t size, Console& console) {
  net::HttpClient http;
  UploadProgress progress(console, size, std::chrono::steady_clock::now());
  constexpr int kAttempts = 3;
  Status last;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    auto resp = PutOnce(http, url, headers, file, size, progress);
    if (resp.ok()) {
      if (resp->status / 100 == 2) {
        progress.Done(std::chrono::steady_clock::now());
        return Status::Ok();
      }
      console.ClearStatusLine();
      return storage::StatusFromS3Error(resp->status, resp->body, "uploading the build context")
          .WithContext("the object store refused the upload");
    }
    last = resp.status();
    if (Interrupted()) {
      console.ClearStatusLine();
      return Status::Canceled("interrupted");
    }
    if (last.code() != Code::kUnavailable && last.code() != Code::kDeadlineExceeded) break;
    if (attempt < kAttempts) {
      console.Line(fmt::format("Upload failed ({}); retrying from the start", last.message()));
      std::this_thread::sleep_for(std::chrono::milliseconds(500 * attempt));
      progress.Restart(std::chrono::steady_clock::now());
    }
  }
  console.ClearStatusLine();
  return Status(last.code(), fmt::format("uploading the build context to the object store failed: "
                                         "{} (check that the store is reachable from here)",
                                         last.message()));
}

Result<UploadedContext> UploadContext(const ProjectSettings& s, const CtrlApi& ctrl,
                                      Console& console) {
  SLIPWAY_RETURN_IF_ERROR(CheckDockerfile(s));
  TemporaryArchive archive_file;
  if (archive_file.path().empty()) {
    return Status::Internal("cannot create a temporary file for the build context (check $TMPDIR)");
  }
  PackageOptions po;
  po.dockerfile = s.dockerfile;
  po.output_path = archive_file.path();
  auto packaged = PackageContext(s.context_dir, po);
  if (!packaged.ok()) {
    if (packaged.status().code() == Code::kNotFound) return Status::NotFound(DockerfileMissing(s));
    return packaged.status().WithContext(
        fmt::format("packaging the build context {}", s.context_dir.string()));
  }
  console.Line(fmt::format("Packaged {} ({} {}, {}), sha256 {}", s.context_dir.string(),
                           packaged->entries, packaged->entries == 1 ? "entry" : "entries",
                           FormatBytes(packaged->size), packaged->sha256.substr(0, 12)));

  pb::GenerateUploadURLRequest req;
  req.set_project(s.project);
  req.set_sha256(packaged->sha256);
  req.set_size(static_cast<int64_t>(packaged->size));
  pb::GenerateUploadURLResponse resp;
  SLIPWAY_RETURN_IF_ERROR(ctrl.Call("BuildService", "GenerateUploadURL", req, &resp));

  UploadedContext out;
  out.context_key = resp.context_key();
  out.dockerfile = packaged->dockerfile;
  out.sha256 = packaged->sha256;
  out.size = packaged->size;
  out.already_uploaded = resp.already_uploaded();
  if (resp.already_uploaded()) {
    console.Line("Context already uploaded (unchanged source): skipping the upload");
    return out;
  }
  if (resp.upload_url().empty()) {
    return Status::Internal(
        "the control plane returned no upload URL for a context it does not "
        "have; report this as a bug");
  }
  net::Headers headers;
  for (const auto& [name, value] : resp.upload_headers()) headers.Add(name, value);
  SLIPWAY_RETURN_IF_ERROR(PutToPresignedUrl(resp.upload_url(), headers, archive_file.path(),
                                            packaged->size, console));
  return out;
}

}  // namespace slipway::cli
