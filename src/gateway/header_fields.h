// Header-field rules the gateway applies to every message it forwards.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/http.h"

namespace slipway::gateway {

// The field names a Connection header lists ("close, X-Secret" -> {"close", "X-Secret"}).
std::vector<std::string> ConnectionTokens(const net::Headers& headers);

// The end-to-end fields of a message: everything but hop-by-hop fields (RFC 9110 7.6.1:
// Connection and the fields it names, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade,
// Proxy-Authorization, Transfer-Encoding) and the extra names in also_drop.
net::Headers EndToEndFields(const net::Headers& headers,
                            std::initializer_list<std::string_view> also_drop);

// The body length a response's fields announce; nullopt when chunked or not given.
std::optional<uint64_t> ContentLength(const net::Headers& headers);

}  // namespace slipway::gateway
