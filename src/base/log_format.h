// How a slipway process writes its log lines (--log-format / SLIPWAY_LOG_FORMAT):
//   text  spdlog's default human line (the default);
//   json  one JSON object per line: {"time":"2026-12-02T00:18:35.123456Z","level":"info",
//         "logger":"slipway","message":"..."} for log shippers that parse lines. A message
//         with line breaks, quotes, control characters or bytes that are not UTF-8 stays one
//         line of valid JSON (escaped; invalid bytes become U+FFFD).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace spdlog {
class formatter;
}

namespace slipway {

// A formatter that writes log records as JSON lines (see the header comment).
std::unique_ptr<spdlog::formatter> MakeJsonLogFormatter();

// Sets the format of every logger, present and future: "text" or "json"; anything else is
// InvalidArgument and changes nothing.
Status SetLogFormat(std::string_view format);

// s as the body of a JSON string (without the quotes), appended to out: '"', '\\' and control
// characters escaped, invalid UTF-8 replaced by U+FFFD.
void AppendJsonEscaped(std::string_view s, std::string& out);

}  // namespace slipway
