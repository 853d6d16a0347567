// Header-field rules the gateway applies to every request it forwards.
#pragma once

#include <initializer_list>
#include <string_view>

#include "net/http.h"

namespace slipway::gateway {

// The end-to-end fields of a message: everything but hop-by-hop fields (net::IsHopByHopField,
// and the fields its Connection names) and the extra names in also_drop.
net::Headers EndToEndFields(const net::Headers& headers,
                            std::initializer_list<std::string_view> also_drop);

}  // namespace slipway::gateway
