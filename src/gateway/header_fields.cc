#include "gateway/header_fields.h"

#include <array>
#include <charconv>

namespace slipway::gateway {
namespace {

// Fields that describe one connection, not the message (RFC 9110 7.6.1), and so never cross
// the gateway. Content-Length and Expect are also the transport's: the engine frames the
// upstream request itself, and answers the client's Expect.
constexpr std::array<std::string_view, 8> kHopByHop = {
    "Connection", "Keep-Alive", "Proxy-Connection",    "TE",
    "Trailer",    "Upgrade",    "Proxy-Authorization", "Transfer-Encoding"};

}  // namespace

// The field names a Connection header lists ("close, X-Secret" -> {"close", "X-Secret"}).
std::vector<std::string> ConnectionTokens(const net::Headers& headers) {
  std::vector<std::string> tokens;
  for (const auto& [name, value] : headers) {
    if (!net::EqualsIgnoreCase(name, "Connection")) continue;
    size_t pos = 0;
    while (pos <= value.size()) {
      size_t comma = value.find(',', pos);
      std::string_view token(value);
      token = token.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
        token.remove_prefix(1);
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
        token.remove_suffix(1);
      if (!token.empty()) tokens.emplace_back(token);
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  return tokens;
}

// The end-to-end fields of a message: everything but hop-by-hop fields and the extra names.
net::Headers EndToEndFields(const net::Headers& headers,
                            std::initializer_list<std::string_view> also_drop) {
  std::vector<std::string> listed = ConnectionTokens(headers);
  auto dropped = [&](std::string_view name) {
    for (std::string_view h : kHopByHop) {
      if (net::EqualsIgnoreCase(name, h)) return true;
    }
    for (std::string_view h : also_drop) {
      if (net::EqualsIgnoreCase(name, h)) return true;
    }
    for (const std::string& h : listed) {
      if (net::EqualsIgnoreCase(name, h)) return true;
    }
    return false;
  };
  net::Headers out;
  for (const auto& [name, value] : headers) {
    if (!dropped(name)) out.Add(name, value);
  }
  return out;
}

std::optional<uint64_t> ContentLength(const net::Headers& headers) {
  if (auto te = headers.Get("Transfer-Encoding"); te && !te->empty()) return std::nullopt;
  auto value = headers.Get("Content-Length");
  if (!value) return std::nullopt;
  uint64_t n = 0;
  auto [end, err] = std::from_chars(value->data(), value->data() + value->size(), n);
  if (err != std::errc() || end != value->data() + value->size()) return std::nullopt;
  return n;
}


}  // namespace slipway::gateway
