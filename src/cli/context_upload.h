// How `slipway build` and `slipway deploy` get the source to the builder: package the context
// (PackageContext: .dockerignore applied, tar.gz, sha256) into a temporary file, ask ctrl for a
// presigned upload URL for that sha256 (GenerateUploadURL), and PUT the file straight to the
// object store with progress, or skip the upload when the store already holds that exact
// context. The temporary file is always removed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "base/status.h"
#include "cli/console.h"
#include "cli/ctrl_api.h"
#include "cli/project_config.h"
#include "net/http.h"

namespace slipway::cli {

struct UploadedContext {
  std::string context_key;  // what CreateBuild / CreateDeployment name
  std::string dockerfile;   // clean, relative to the context
  std::string sha256;
  uint64_t size = 0;
  bool already_uploaded = false;  // the upload was skipped
};

// NotFound `no Dockerfile at "api/Dockerfile" in /src/ctx (use --dockerfile)` when the
// settings' Dockerfile is not a file: checked before anything leaves the machine.
Status CheckDockerfile(const ProjectSettings& settings);

// Packages, asks for the URL, uploads. Progress and what happened go to `console`.
Result<UploadedContext> UploadContext(const ProjectSettings& settings, const CtrlApi& ctrl,
                                      Console& console);

// PUTs `file` (`size` bytes) to a presigned URL, drawing progress on `console`. A refusal
// carries the store's own error code and message; transport failures are retried from the
// start up to 3 times. `headers` are sent as given (the URL signs them).
Status PutToPresignedUrl(const std::string& url, const net::Headers& headers,
                         const std::filesystem::path& file, uint64_t size, Console& console);

}  // namespace slipway::cli
