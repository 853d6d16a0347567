// Decodes the output stream of dockerd's POST /build into human log lines and a verdict.
//
// dockerd answers a build with one JSON object per line, in two dialects:
//  - classic builder (version=1): {"stream": "..."}, {"aux": {"ID": "sha256:..."}},
//    {"errorDetail": {...}, "error": "..."};
//  - BuildKit (version=2): {"id": "moby.buildkit.trace", "aux": "<base64 StatusResponse>"}
//    progress records, {"id": "moby.image.id", "aux": {"ID": "sha256:..."}}, and the same
//    errorDetail line on failure.
// Push output ({"status": ..., "progressDetail": ...}, {"aux": {"Tag", "Digest", "Size"}}) is
// decoded too. Failures arrive with HTTP 200, so the verdict is read from the stream itself.
// Not thread-safe; one decoder per stream.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "ctrl/build/backend.h"
#include "ctrl/build/buildkit_progress.h"

namespace slipway::ctrl::build::docker {

class BuildOutputDecoder {
 public:
  explicit BuildOutputDecoder(BuildLogSink sink) : sink_(sink), buildkit_(std::move(sink)) {}

  // Feeds bytes as they arrive; lines may be split anywhere.
  void Feed(std::string_view bytes);
  // Flushes a last line without a newline.
  void Finish();

  // The builder's error message, if the stream reported one.
  const std::optional<std::string>& error() const { return error_; }
  // "sha256:..." of the built image, when reported.
  const std::string& image_id() const { return image_id_; }
  // Registry digest reported by a push.
  const std::string& pushed_digest() const { return pushed_digest_; }

 private:
  void HandleLine(std::string_view line);
  void HandleBuildkitTrace(std::string_view base64);
  void Emit(std::string_view text);

  BuildLogSink sink_;
  std::string pending_;
  std::string partial_stream_;  // classic {"stream"} text not yet ending in '\n'
  std::optional<std::string> error_;
  std::string image_id_;
  std::string pushed_digest_;
  BuildkitProgress buildkit_;
};

}  // namespace slipway::ctrl::build::docker
