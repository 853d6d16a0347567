#include "gateway/header_fields.h"

#include "net/http_wire.h"

namespace slipway::gateway {

net::Headers EndToEndFields(const net::Headers& headers,
                            std::initializer_list<std::string_view> also_drop) {
  const bool connection = headers.Has("Connection");
  auto dropped = [&](std::string_view name) {
    if (net::IsHopByHopField(name)) return true;
    for (std::string_view h : also_drop) {
      if (net::EqualsIgnoreCase(name, h)) return true;
    }
    return connection && net::NamedByConnection(headers, name);
  };
  net::Headers out;
  out.Reserve(headers.size() + 4);  // room for what a proxy adds
  for (const auto& [name, value] : headers) {
    if (!dropped(name)) out.Add(name, value);
  }
  return out;
}

}  // namespace slipway::gateway
