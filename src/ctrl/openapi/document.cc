#include "ctrl/openapi/document.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <regex>
#include <unordered_set>

namespace slipway::ctrl::openapi {
namespace {

const Json& NullJson() {
  static const Json kNull;
  return kNull;
}

// YAML 1.2 core schema resolution of a plain (unquoted) scalar.
Json PlainScalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  static const std::regex kInt(R"([-+]?[0-9]+)");
  static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (std::regex_match(s, kInt)) {
    int64_t v = 0;
    const char* begin = s.data() + (s[0] == '+' ? 1 : 0);
    auto [end, ec] = std::from_chars(begin, s.data() + s.size(), v);
    if (ec == std::errc() && end == s.data() + s.size()) return v;
    return std::stod(s);
  }
  if (std::regex_match(s, kFloat)) return std::stod(s);
  return s;
}

Json ToJson(const YAML::Node& node, int depth) {
  if (depth > 256) return nullptr;  // deeper than any real spec; yaml-cpp aliases can nest
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = ToJson(kv.second, depth + 1);
      return out;
    }
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const auto& item : node) out.push_back(ToJson(item, depth + 1));
      return out;
    }
    case YAML::NodeType::Scalar:
      // A quoted or explicitly tagged scalar is a string ("!" is yaml-cpp's non-plain tag).
      if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") return node.Scalar();
      return PlainScalar(node.Scalar());
    default:
      return nullptr;
  }
}

// "~1" and "~0" escapes of a JSON pointer token, and the percent-encoding of a URI fragment.
std::string UnescapeToken(std::string token) {
  std::string decoded;
  for (size_t i = 0; i < token.size(); ++i) {
    if (token[i] == '%' && i + 2 < token.size()) {
      int v = 0;
      auto [p, ec] = std::from_chars(token.data() + i + 1, token.data() + i + 3, v, 16);
      if (ec == std::errc() && p == token.data() + i + 3) {
        decoded += static_cast<char>(v);
        i += 2;
        continue;
      }
    }
    decoded += token[i];
  }
  std::string out;
  for (size_t i = 0; i < decoded.size(); ++i) {
    if (decoded[i] == '~' && i + 1 < decoded.size() &&
        (decoded[i + 1] == '0' || decoded[i + 1] == '1')) {
      out += decoded[i + 1] == '0' ? '~' : '/';
      ++i;
    } else {
      out += decoded[i];
    }
  }
  return out;
}

}  // namespace

Result<Json> YamlToJson(const std::string& text) {
  try {
    YAML::Node node = YAML::Load(text);
    return ToJson(node, 0);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(
        fmt::format("the document is neither YAML nor JSON (line {}: {})", e.mark.line + 1, e.msg));
  }
}

Result<Document> Document::Parse(const std::string& text) {
  Document doc;
  // JSON first: it is exact about numbers and strings, and much faster on large specs.
  Json parsed = Json::parse(text, nullptr, false);
  if (parsed.is_discarded()) {
    SLIPWAY_ASSIGN_OR_RETURN(parsed, YamlToJson(text));
  }
  if (!parsed.is_object()) {
    return Status::InvalidArgument(
        "the document is not an OpenAPI document: its root is not a mapping");
  }
  if (!parsed.contains("openapi") && !parsed.contains("swagger")) {
    return Status::InvalidArgument(
        "the document is not an OpenAPI document: it has no \"openapi\" version field");
  }
  doc.root_ = std::move(parsed);
  return doc;
}

const Json* Document::Pointer(const std::string& ref) const {
  if (ref.empty() || ref[0] != '#') return nullptr;
  const Json* node = &root_;
  size_t pos = 1;
  if (pos < ref.size() && ref[pos] != '/') return nullptr;
  while (pos < ref.size()) {
    size_t next = ref.find('/', pos + 1);
    std::string token = UnescapeToken(
        ref.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1));
    if (node->is_object()) {
      auto it = node->find(token);
      if (it == node->end()) return nullptr;
      node = &*it;
    } else if (node->is_array()) {
      size_t index = 0;
      auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), index);
      if (ec != std::errc() || p != token.data() + token.size() || index >= node->size())
        return nullptr;
      node = &(*node)[index];
    } else {
      return nullptr;
    }
    if (next == std::string::npos) break;
    pos = next;
  }
  return node;
}

const Json& Document::Resolve(const Json& node) const {
  const Json* current = &node;
  std::unordered_set<const Json*> seen;
  while (current->is_object()) {
    auto it = current->find("$ref");
    if (it == current->end() || !it->is_string()) break;
    if (!seen.insert(current).second) break;  // a cycle of references
    const Json* target = Pointer(it->get<std::string>());
    if (target == nullptr) break;  // another file, or nothing there
    current = target;
  }
  return current ? *current : NullJson();
}

}  // namespace slipway::ctrl::openapi
