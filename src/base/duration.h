// Human durations for flags and environment variables: "250ms", "15s", "5m", "1h", "1h30m";
// a bare number is seconds.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/status.h"

namespace slipway {

Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
// "5m", "1.5s", "250ms": the shortest faithful form, for messages.
std::string FormatDuration(std::chrono::milliseconds d);

}  // namespace slipway
