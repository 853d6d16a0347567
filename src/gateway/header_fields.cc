#include "gateway/header_fields.h"

#include "net/http_wire.h"

namespace slipway::gateway {

void AppendEndToEndFields(const net::Headers& headers,
                          std::initializer_list<std::string_view> also_drop, std::string* out) {
  const bool connection = headers.Has("Connection");
  auto dropped = [&](std::string_view name) {
    if (net::IsHopByHopField(name)) return true;
    for (std::string_view h : also_drop) {
      if (net::EqualsIgnoreCase(name, h)) return true;
    }
    return connection && net::NamedByConnection(headers, name);
  };
  for (const auto& [name, value] : headers) {
    if (dropped(name)) continue;
    *out += name;
    *out += ": ";
    *out += value;
    *out += "\r\n";
  }
}

}  // namespace slipway::gateway
