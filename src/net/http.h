// Plain HTTP types shared by the server and the client. No Beast, no curl: cheap to include.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace slipway::net {

// Header fields in arrival order. Names compare case-insensitively; a name may repeat.
class Headers {
 public:
  Headers() = default;
  Headers(std::initializer_list<std::pair<std::string, std::string>> fields) : fields_(fields) {}

  void Add(std::string name, std::string value) { fields_.emplace_back(std::move(name), std::move(value)); }
  // Replaces every field of that name with one.
  void Set(std::string_view name, std::string value);
  void Remove(std::string_view name);
  // The first value of that name, if any.
  std::optional<std::string_view> Get(std::string_view name) const;
  std::string GetOr(std::string_view name, std::string_view fallback) const;
  bool Has(std::string_view name) const { return Get(name).has_value(); }

  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }
  auto begin() const { return fields_.begin(); }
  auto end() const { return fields_.end(); }
  size_t size() const { return fields_.size(); }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b);
std::string ToLower(std::string_view s);

// RFC 3986 percent-encoding. With encode_slash=false, '/' is kept (S3 object keys in paths).
std::string UriEncode(std::string_view s, bool encode_slash = true);
// Decodes %XX (and, when plus_is_space, '+'); false on a malformed escape.
bool UriDecode(std::string_view s, std::string* out, bool plus_is_space = false);

// The query string "a=1&b=&c" as decoded (name, value) pairs in order.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);

// s with each byte that does not belong to a well-formed UTF-8 sequence replaced by U+FFFD:
// for text quoted from a request (a header value, a path) into JSON, which must be UTF-8.
std::string ToValidUtf8(std::string_view s);

// The reason phrase for a status code ("Not Found").
std::string_view StatusReason(int status);

}  // namespace slipway::net
