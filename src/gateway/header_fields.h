// Header-field rules the gateway applies to every request it forwards.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "net/http.h"

namespace slipway::gateway {

// Appends the end-to-end fields of a message as header lines ("Name: value" CRLF each):
// everything but hop-by-hop fields (net::IsHopByHopField, and the fields its Connection names)
// and the extra names in also_drop.
void AppendEndToEndFields(const net::Headers& headers,
                          std::initializer_list<std::string_view> also_drop, std::string* out);

}  // namespace slipway::gateway
