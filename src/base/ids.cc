#include "base/ids.h"

#include "base/crypto.h"

namespace slipway {

std::string NewId(std::string_view prefix) {
  std::string id(prefix);
  id += '_';
  id += RandomHex(8);
  return id;
}

std::string ShortId(std::string_view id) {
  size_t sep = id.find('_');
  if (sep == std::string_view::npos) return std::string(id);
  return std::string(id.substr(sep + 1, 8));
}

}  // namespace slipway
