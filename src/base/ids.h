// Identifiers: "<prefix>_<16 lowercase hex>" (64 random bits), e.g. "dep_3f9a0c1e5b7d2a4f".
// The random part is DNS-label safe, so a short form of it can appear in hostnames.
#pragma once

#include <string>
#include <string_view>

namespace slipway {

std::string NewId(std::string_view prefix);

// The first 8 hex digits of the random part: "dep_3f9a0c1e5b7d2a4f" -> "3f9a0c1e".
// Returns the id unchanged when it has no '_'.
std::string ShortId(std::string_view id);

}  // namespace slipway
