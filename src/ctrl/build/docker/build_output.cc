#include "ctrl/build/docker/build_output.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "moby/buildkit/v1/control.pb.h"

namespace slipway::ctrl::build::docker {
namespace {

using Json = nlohmann::json;

}  // namespace

void BuildOutputDecoder::Feed(std::string_view bytes) {
  pending_.append(bytes);
  size_t start = 0;
  for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
    HandleLine(std::string_view(pending_).substr(start, nl - start));
  }
  pending_.erase(0, start);
}

void BuildOutputDecoder::Finish() {
  if (!pending_.empty()) {
    HandleLine(pending_);
    pending_.clear();
  }
  if (!partial_stream_.empty()) {
    Emit(partial_stream_);
    partial_stream_.clear();
  }
  buildkit_.Finish();
}

void BuildOutputDecoder::Emit(std::string_view text) {
  if (sink_) sink_(CleanLogLine(text));
}

void BuildOutputDecoder::HandleLine(std::string_view line) {
  if (line.empty() || line == "\r") return;
  Json msg = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (msg.is_discarded() || !msg.is_object()) {
    Emit(line);  // not JSON: pass through rather than lose it
    return;
  }
  // In-stream failures carry errorDetail/error; refused requests (HTTP 4xx/5xx) a bare message.
  const bool daemon_error = msg.size() == 1 && msg.contains("message") && msg["message"].is_string();
  if (msg.contains("errorDetail") || msg.contains("error") || daemon_error) {
    std::string message;
    if (daemon_error) message = msg["message"].get<std::string>();
    if (msg.contains("errorDetail") && msg["errorDetail"].is_object() &&
        msg["errorDetail"].contains("message")) {
      message = msg["errorDetail"]["message"].get<std::string>();
    } else if (msg.contains("error") && msg["error"].is_string()) {
      message = msg["error"].get<std::string>();
    }
    message = StripAnsi(message);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    error_ = message;
    Emit("ERROR: " + message);
    return;
  }
  const std::string id = msg.value("id", "");
  if (id == "moby.buildkit.trace" && msg["aux"].is_string()) {
    HandleBuildkitTrace(msg["aux"].get<std::string>());
    return;
  }
  if (msg.contains("aux") && msg["aux"].is_object()) {
    const Json& aux = msg["aux"];
    if (aux.contains("ID") && aux["ID"].is_string()) image_id_ = aux["ID"].get<std::string>();
    if (aux.contains("Digest") && aux["Digest"].is_string()) {
      pushed_digest_ = aux["Digest"].get<std::string>();
      Emit(fmt::format("pushed {} digest {}", aux.value("Tag", ""), pushed_digest_));
    }
    return;
  }
  if (msg.contains("stream") && msg["stream"].is_string()) {
    partial_stream_ += msg["stream"].get<std::string>();
    size_t start = 0;
    for (size_t nl; (nl = partial_stream_.find('\n', start)) != std::string::npos; start = nl + 1) {
      Emit(std::string_view(partial_stream_).substr(start, nl - start));
    }
    partial_stream_.erase(0, start);
    return;
  }
  if (msg.contains("status") && msg["status"].is_string()) {
    // Push and pull progress: keep the milestones, drop the byte-counter updates.
    if (msg.contains("progressDetail") && msg["progressDetail"].is_object() &&
        !msg["progressDetail"].empty()) {
      return;
    }
    std::string text = msg["status"].get<std::string>();
    if (!id.empty()) text = id + ": " + text;
    Emit(text);
  }
}

void BuildOutputDecoder::HandleBuildkitTrace(std::string_view base64) {
  std::string bytes;
  moby::buildkit::v1::StatusResponse status;
  if (!Base64Decode(base64, &bytes) || !status.ParseFromString(bytes)) {
    Emit("(an unreadable BuildKit progress record was skipped)");
    return;
  }
  buildkit_.Apply(status);
}

}  // namespace slipway::ctrl::build::docker
