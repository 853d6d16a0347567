#include "ctrl/openapi/diff.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "ctrl/openapi/document.h"

namespace slipway::ctrl::openapi {
namespace {

constexpr const char* kMethods[] = {"get",     "put",  "post",  "delete",
                                    "options", "head", "patch", "trace"};
constexpr int kMaxDepth = 32;

using Level = ChangeLevel;

// Where a change is: the operation it belongs to.
struct Operation {
  std::string path;
  std::string method;  // upper case
  std::string operation_id;
};

enum class Direction { kRequest, kResponse };
// What a schema describes: a parameter's value, a whole request or response body, or a
// property (or array item) somewhere inside a body.
enum class Site { kParameter, kBody, kProperty };

struct SchemaPlace {
  Direction direction;
  Site site;
  std::string what;  // for sentences: "query parameter 'limit'", "property 'owner/name'"
  bool strongly_typed = true;
};

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "/pets/{petId}" and "/pets/{id}" are the same endpoint: templates compare by position.
std::string NormalizedPath(const std::string& path) {
  std::string out;
  bool in_param = false;
  for (char c : path) {
    if (c == '{') {
      in_param = true;
      out += "{}";
    } else if (c == '}') {
      in_param = false;
    } else if (!in_param) {
      out += c;
    }
  }
  return out;
}

// The names of a path's template parameters, in order.
std::vector<std::string> PathTemplateNames(const std::string& path) {
  std::vector<std::string> names;
  size_t pos = 0;
  while ((pos = path.find('{', pos)) != std::string::npos) {
    size_t end = path.find('}', pos);
    if (end == std::string::npos) break;
    names.push_back(path.substr(pos + 1, end - pos - 1));
    pos = end + 1;
  }
  return names;
}

bool IsSuccessStatus(const std::string& code) { return !code.empty() && code[0] == '2'; }

bool IsJsonMediaType(const std::string& media) {
  std::string m = Lower(media.substr(0, media.find(';')));
  return m == "application/json" || (m.size() > 5 && m.compare(m.size() - 5, 5, "+json") == 0);
}

std::string Quoted(const Json& v) {
  return v.is_string() ? "'" + v.get<std::string>() + "'" : v.dump();
}

bool Truthy(const Json& node, const char* key) {
  if (!node.is_object()) return false;
  auto it = node.find(key);
  return it != node.end() && it->is_boolean() && it->get<bool>();
}

const Json& Member(const Json& node, const char* key) {
  static const Json kNull;
  if (!node.is_object()) return kNull;
  auto it = node.find(key);
  return it == node.end() ? kNull : *it;
}

std::set<std::string> StringSet(const Json& node) {
  std::set<std::string> out;
  if (node.is_array()) {
    for (const auto& v : node) {
      if (v.is_string()) out.insert(v.get<std::string>());
    }
  }
  return out;
}

// A schema's types without "null", and whether it admits null (3.0 nullable, 3.1 type list).
struct Types {
  std::set<std::string> names;
  bool nullable = false;
};

Types TypesOf(const Json& schema) {
  Types t;
  const Json& type = Member(schema, "type");
  if (type.is_string()) {
    t.names.insert(type.get<std::string>());
  } else if (type.is_array()) {
    t.names = StringSet(type);
  }
  if (t.names.erase("null") > 0) t.nullable = true;
  if (Truthy(schema, "nullable")) t.nullable = true;
  return t;
}

// Every type of sub is admitted by super (an integer is a number).
bool Covers(const std::set<std::string>& super, const std::set<std::string>& sub) {
  for (const auto& t : sub) {
    if (super.count(t) == 0 && !(t == "integer" && super.count("number") > 0)) return false;
  }
  return true;
}

std::string TypeText(const Types& t, const Json& format) {
  std::string out;
  for (const auto& n : t.names) out += (out.empty() ? "" : "|") + n;
  if (format.is_string() && !format.get<std::string>().empty())
    out += "/" + format.get<std::string>();
  return out.empty() ? "any" : out;
}

std::optional<double> Number(const Json& node, const char* key) {
  const Json& v = Member(node, key);
  if (v.is_number()) return v.get<double>();
  return std::nullopt;
}

std::string Num(double v) { return fmt::format("{}", v); }

// A security requirement as the sorted names of its schemes: "api_key+oauth".
std::string RequirementKey(const Json& requirement) {
  std::string key;
  if (requirement.is_object()) {
    for (const auto& [name, scopes] : requirement.items()) key += (key.empty() ? "" : "+") + name;
  }
  return key;
}

class Differ {
 public:
  Differ(const Document& base, const Document& revision) : base_(base), rev_(revision) {}

  ApiDiff Run() {
    ComparePaths();
    CompareComponentSchemas();
    std::stable_sort(out_.changes.begin(), out_.changes.end(),
                     [](const ApiChange& a, const ApiChange& b) { return a.level > b.level; });
    for (const auto& c : out_.changes) {
      if (c.level == Level::kBreaking) ++out_.breaking;
      if (c.level == Level::kWarning) ++out_.warnings;
    }
    out_.has_breaking_changes = out_.breaking > 0;
    return std::move(out_);
  }

 private:
  void Add(const std::string& kind, Level level, const Operation& op, std::string text) {
    ApiChange c{kind, level, op.path, op.method, op.operation_id, std::move(text)};
    for (const auto& existing : out_.changes) {
      if (existing.kind == c.kind && existing.path == c.path && existing.method == c.method &&
          existing.text == c.text) {
        return;
      }
    }
    out_.changes.push_back(std::move(c));
  }

  // --- paths and operations ---

  using PathMap =
      std::map<std::string, std::pair<std::string, const Json*>>;  // normalized -> (path, item)

  PathMap Paths(const Document& doc) {
    PathMap out;
    const Json& paths = Member(doc.root(), "paths");
    if (!paths.is_object()) return out;
    for (const auto& [path, item] : paths.items()) {
      out[NormalizedPath(path)] = {path, &doc.Resolve(item)};
    }
    return out;
  }

  // Operations marked x-stability-level alpha or draft promise nothing yet.
  static bool Unstable(const Json& op) {
    const Json& level = Member(op, "x-stability-level");
    return level == "alpha" || level == "draft";
  }

  static std::string OperationId(const Json& op) {
    const Json& id = Member(op, "operationId");
    return id.is_string() ? id.get<std::string>() : "";
  }

  void ComparePaths() {
    PathMap base = Paths(base_), rev = Paths(rev_);
    for (const auto& [key, entry] : base) {
      const auto& [path, item] = entry;
      auto it = rev.find(key);
      if (it == rev.end()) {
        ++out_.summary.paths.deleted;
        for (const char* m : kMethods) {
          const Json& op = Member(*item, m);
          if (!op.is_object()) continue;
          ++out_.summary.operations.deleted;
          Operation where{path, Upper(m), OperationId(op)};
          if (Unstable(op)) continue;
          if (Truthy(op, "deprecated")) {
            Add("api-path-removed-with-deprecation", Level::kInfo, where,
                "the deprecated path was removed with its operations");
          } else {
            Add("api-path-removed-without-deprecation", Level::kBreaking, where,
                "the path was removed without being deprecated first");
          }
        }
        continue;
      }
      const auto& [rev_path, rev_item] = it->second;
      if (*item != *rev_item) ++out_.summary.paths.modified;
      for (const char* m : kMethods) {
        const Json& op = Member(*item, m);
        const Json& rop = Member(*rev_item, m);
        if (!op.is_object() && !rop.is_object()) continue;
        if (!rop.is_object()) {
          ++out_.summary.operations.deleted;
          Operation where{path, Upper(m), OperationId(op)};
          if (Unstable(op)) continue;
          if (Truthy(op, "deprecated")) {
            Add("api-removed-with-deprecation", Level::kInfo, where,
                "the deprecated operation was removed");
          } else {
            Add("api-removed-without-deprecation", Level::kBreaking, where,
                "the operation was removed without being deprecated first");
          }
          continue;
        }
        Operation where{rev_path, Upper(m), OperationId(rop)};
        if (!op.is_object()) {
          ++out_.summary.operations.added;
          Add("endpoint-added", Level::kInfo, where, "the operation was added");
          continue;
        }
        if (op != rop) ++out_.summary.operations.modified;
        CompareOperation(where, path, *item, op, rev_path, *rev_item, rop);
      }
    }
    for (const auto& [key, entry] : rev) {
      if (base.count(key)) continue;
      ++out_.summary.paths.added;
      for (const char* m : kMethods) {
        const Json& op = Member(*entry.second, m);
        if (!op.is_object()) continue;
        ++out_.summary.operations.added;
        Add("endpoint-added", Level::kInfo, {entry.first, Upper(m), OperationId(op)},
            "the operation was added");
      }
    }
  }

  void CompareOperation(const Operation& where, const std::string& base_path, const Json& base_item,
                        const Json& op, const std::string& rev_path, const Json& rev_item,
                        const Json& rop) {
    if (!Truthy(op, "deprecated") && Truthy(rop, "deprecated")) {
      Add("endpoint-deprecated", Level::kInfo, where, "the operation was deprecated");
    }
    CompareParameters(where, Parameters(base_, base_path, base_item, op),
                      Parameters(rev_, rev_path, rev_item, rop));
    CompareRequestBody(where, Member(op, "requestBody"), Member(rop, "requestBody"));
    CompareResponses(where, Member(op, "responses"), Member(rop, "responses"));
    CompareOperationSecurity(where, op, rop);
  }

  // --- parameters ---

  struct Parameter {
    const Json* node;
    std::string in, name;
  };

  // The operation's parameters with the path item's, the operation's winning, keyed by where
  // they are and their name (path parameters by their position in the template, so a renamed
  // template variable is the same parameter; header names without case).
  std::map<std::string, Parameter> Parameters(const Document& doc, const std::string& path,
                                              const Json& item, const Json& op) {
    std::map<std::string, Parameter> out;
    std::vector<std::string> template_names = PathTemplateNames(path);
    for (const Json* list : {&Member(item, "parameters"), &Member(op, "parameters")}) {
      if (!list->is_array()) continue;
      for (const auto& raw : *list) {
        const Json& p = doc.Resolve(raw);
        const Json& in = Member(p, "in");
        const Json& name = Member(p, "name");
        if (!in.is_string() || !name.is_string()) continue;
        std::string key = in.get<std::string>() + ":";
        if (in == "path") {
          auto pos =
              std::find(template_names.begin(), template_names.end(), name.get<std::string>());
          key += pos == template_names.end() ? name.get<std::string>()
                                             : "#" + std::to_string(pos - template_names.begin());
        } else if (in == "header") {
          key += Lower(name.get<std::string>());
        } else {
          key += name.get<std::string>();
        }
        out[key] = Parameter{&p, in.get<std::string>(), name.get<std::string>()};
      }
    }
    return out;
  }

  void CompareParameters(const Operation& where, const std::map<std::string, Parameter>& base,
                         const std::map<std::string, Parameter>& rev) {
    for (const auto& [key, p] : base) {
      std::string what = fmt::format("{} parameter '{}'", p.in, p.name);
      auto it = rev.find(key);
      if (it == rev.end()) {
        if (Truthy(*p.node, "deprecated")) {
          Add("request-parameter-removed-with-deprecation", Level::kInfo, where,
              fmt::format("the deprecated {} was removed", what));
        } else {
          Add("request-parameter-removed", Level::kWarning, where,
              fmt::format(
                  "the {} was removed; clients that still send it may be refused or ignored",
                  what));
        }
        continue;
      }
      const Parameter& r = it->second;
      bool was_required = Truthy(*p.node, "required") || p.in == "path";
      bool is_required = Truthy(*r.node, "required") || r.in == "path";
      if (!was_required && is_required) {
        Add("request-parameter-became-required", Level::kBreaking, where,
            fmt::format("the {} became required", what));
      } else if (was_required && !is_required) {
        Add("request-parameter-became-optional", Level::kInfo, where,
            fmt::format("the {} became optional", what));
      }
      SchemaPlace place{Direction::kRequest, Site::kParameter, what, false};
      CompareSchemas(where, place, Member(*p.node, "schema"), Member(*r.node, "schema"), 0);
    }
    for (const auto& [key, r] : rev) {
      if (base.count(key)) continue;
      std::string what = fmt::format("{} parameter '{}'", r.in, r.name);
      if (r.in == "path") {
        Add("new-request-path-parameter", Level::kBreaking, where,
            fmt::format("the {} was added", what));
      } else if (Truthy(*r.node, "required")) {
        Add("new-required-request-parameter", Level::kBreaking, where,
            fmt::format("the required {} was added; clients that do not send it will be refused",
                        what));
      } else {
        Add("new-optional-request-parameter", Level::kInfo, where,
            fmt::format("the optional {} was added", what));
      }
    }
  }

  // --- request bodies ---

  void CompareRequestBody(const Operation& where, const Json& base_raw, const Json& rev_raw) {
    const Json base = Normalized(base_, base_raw);
    const Json rev = Normalized(rev_, rev_raw);
    if (!base.is_object() && !rev.is_object()) return;
    if (!rev.is_object()) {
      Add("request-body-removed", Level::kBreaking, where, "the request body was removed");
      return;
    }
    if (!base.is_object()) {
      if (Truthy(rev, "required")) {
        Add("request-body-added-required", Level::kBreaking, where,
            "a required request body was added");
      } else {
        Add("request-body-added-optional", Level::kInfo, where,
            "an optional request body was added");
      }
      return;
    }
    if (!Truthy(base, "required") && Truthy(rev, "required")) {
      Add("request-body-became-required", Level::kBreaking, where,
          "the request body became required");
    } else if (Truthy(base, "required") && !Truthy(rev, "required")) {
      Add("request-body-became-optional", Level::kInfo, where, "the request body became optional");
    }
    CompareContent(where, Direction::kRequest, "", Member(base, "content"), Member(rev, "content"));
  }

  // --- responses ---

  void CompareResponses(const Operation& where, const Json& base, const Json& rev) {
    if (!base.is_object()) return;
    for (const auto& [code, raw] : base.items()) {
      if (!rev.is_object() || !rev.contains(code)) {
        if (IsSuccessStatus(code)) {
          Add("response-success-status-removed", Level::kBreaking, where,
              fmt::format("the success response {} was removed", code));
        } else {
          Add("response-non-success-status-removed", Level::kInfo, where,
              fmt::format("the response {} was removed", code));
        }
        continue;
      }
      CompareContent(where, Direction::kResponse, code, Member(base_.Resolve(raw), "content"),
                     Member(rev_.Resolve(rev[code]), "content"));
    }
    if (!rev.is_object()) return;
    for (const auto& [code, raw] : rev.items()) {
      if (base.contains(code)) continue;
      Add(IsSuccessStatus(code) ? "response-success-status-added"
                                : "response-non-success-status-added",
          Level::kInfo, where, fmt::format("the response {} was added", code));
    }
  }

  // The media types of a request body or of one response, and their schemas.
  void CompareContent(const Operation& where, Direction direction, const std::string& status,
                      const Json& base, const Json& rev) {
    const bool request = direction == Direction::kRequest;
    std::string subject = request ? "request body" : fmt::format("response {}", status);
    if (base.is_object()) {
      for (const auto& [media, body] : base.items()) {
        if (!rev.is_object() || !rev.contains(media)) {
          Add(request ? "request-body-media-type-removed" : "response-media-type-removed",
              Level::kBreaking, where,
              fmt::format("the {} no longer has the media type {}", subject, media));
          continue;
        }
        SchemaPlace place{direction, Site::kBody, subject, IsJsonMediaType(media)};
        CompareSchemas(where, place, Member(body, "schema"), Member(rev[media], "schema"), 0);
      }
    }
    if (rev.is_object()) {
      for (const auto& [media, body] : rev.items()) {
        if (base.is_object() && base.contains(media)) continue;
        Add(request ? "request-body-media-type-added" : "response-media-type-added", Level::kInfo,
            where, fmt::format("the {} gained the media type {}", subject, media));
      }
    }
  }

  // --- schemas ---

  // The kind prefix oasdiff uses for a place: "request-parameter-", "request-body-",
  // "request-property-", "response-body-", "response-property-".
  static std::string Prefix(const SchemaPlace& place) {
    if (place.site == Site::kParameter) return "request-parameter-";
    std::string side = place.direction == Direction::kRequest ? "request-" : "response-";
    return side + (place.site == Site::kBody ? "body-" : "property-");
  }

  // A schema with its reference followed, and a nullable wrapper (oneOf or anyOf of the
  // schema and {type: "null"}) read as the schema itself, nullable.
  static Json Normalized(const Document& doc, const Json& raw) {
    const Json& schema = doc.Resolve(raw);
    for (const char* key : {"oneOf", "anyOf", "allOf"}) {
      const Json& parts = Member(schema, key);
      if (!parts.is_array() || parts.size() != 1) continue;
      // A composition of one schema is that schema.
      Json inner = doc.Resolve(parts[0]);
      if (!inner.is_object()) break;
      for (const auto& [k, v] : schema.items()) {
        if (k != key && !inner.contains(k)) inner[k] = v;
      }
      return inner;
    }
    for (const char* key : {"oneOf", "anyOf"}) {
      const Json& parts = Member(schema, key);
      if (!parts.is_array() || parts.size() != 2) continue;
      for (size_t i = 0; i < 2; ++i) {
        const Json& part = doc.Resolve(parts[i]);
        if (Member(part, "type") != "null") continue;
        Json inner = doc.Resolve(parts[1 - i]);
        if (!inner.is_object()) break;
        for (const auto& [k, v] : schema.items()) {
          if (k != key && !inner.contains(k)) inner[k] = v;
        }
        inner["nullable"] = true;
        return inner;
      }
    }
    return schema;
  }

  static std::string RefOf(const Json& raw) {
    const Json& ref = Member(raw, "$ref");
    return ref.is_string() ? ref.get<std::string>() : "";
  }

  void CompareSchemas(const Operation& where, const SchemaPlace& place, const Json& base_raw,
                      const Json& rev_raw, int depth) {
    if (depth > kMaxDepth) return;
    // A pair of named schemas already being compared further up is a recursive schema: its
    // changes were (or will be) reported there.
    std::pair<std::string, std::string> refs{RefOf(base_raw), RefOf(rev_raw)};
    bool tracked = !refs.first.empty() && !refs.second.empty();
    if (tracked && !active_refs_.insert(refs).second) return;
    const Json base = Normalized(base_, base_raw);
    const Json rev = Normalized(rev_, rev_raw);
    if (base.is_object() && rev.is_object()) {
      CompareTypes(where, place, base, rev);
      CompareNullable(where, place, base, rev);
      CompareEnums(where, place, base, rev);
      if (place.direction == Direction::kRequest)
        CompareRequestConstraints(where, place, base, rev);
      if (place.site != Site::kParameter) {
        CompareProperties(where, place, base, rev, depth);
        const Json& items = Member(base, "items");
        const Json& rev_items = Member(rev, "items");
        if (items.is_object() && rev_items.is_object()) {
          SchemaPlace inner{place.direction, Site::kProperty,
                            place.site == Site::kProperty ? place.what + "/items" : "items",
                            place.strongly_typed};
          CompareSchemas(where, inner, items, rev_items, depth + 1);
        }
        CompareSubschemas(where, place, base, rev, depth);
      }
    }
    if (tracked) active_refs_.erase(refs);
  }

  // The schemas inside a schema that constrain the same value (composition parts by position,
  // conditionals, map values, ...): their changes are the schema's.
  void CompareSubschemas(const Operation& where, const SchemaPlace& outer, const Json& base,
                         const Json& rev, int depth) {
    // The parts of a body's schema are values inside the body.
    SchemaPlace place = outer;
    if (place.site == Site::kBody) {
      place.site = Site::kProperty;
      place.what = "";
    }
    for (const char* key : {"allOf", "oneOf", "anyOf", "prefixItems"}) {
      const Json& b = Member(base, key);
      const Json& r = Member(rev, key);
      if (!b.is_array() || !r.is_array()) continue;
      for (size_t i = 0; i < std::min(b.size(), r.size()); ++i) {
        CompareSchemas(where, place, b[i], r[i], depth + 1);
      }
    }
    for (const char* key :
         {"additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
          "unevaluatedItems", "unevaluatedProperties", "contentSchema"}) {
      const Json& b = Member(base, key);
      const Json& r = Member(rev, key);
      if (b.is_object() && r.is_object()) CompareSchemas(where, place, b, r, depth + 1);
    }
  }

  std::string Subject(const SchemaPlace& place) const {
    if (place.site == Site::kProperty && place.what.empty()) {
      return place.direction == Direction::kRequest ? "a part of the request body"
                                                    : "a part of the response body";
    }
    if (place.site == Site::kProperty) {
      return fmt::format("the {} property '{}'",
                         place.direction == Direction::kRequest ? "request" : "response",
                         place.what);
    }
    return "the " + place.what;
  }

  // Whether a value valid as `from` is still valid as `to` (both one side of a change, in the
  // direction data flows: base to revision for requests, revision to base for responses).
  static bool TypeContained(const std::set<std::string>& to, const std::set<std::string>& from,
                            bool strongly_typed) {
    if (to == from || Covers(to, from)) return true;
    // Outside JSON, any value can be read as a string.
    return !strongly_typed && to.size() == 1 && *to.begin() == "string";
  }

  static bool FormatContained(const std::set<std::string>& to_type, const Json& to,
                              const Json& from) {
    std::string t = to.is_string() ? to.get<std::string>() : "";
    std::string f = from.is_string() ? from.get<std::string>() : "";
    if (t.empty() || t == f) return true;  // no format admits every format
    if (to_type.size() != 1) return false;
    if (*to_type.begin() == "number") return t == "double" && f == "float";
    if (*to_type.begin() == "integer") {
      return (t == "int64" && f == "int32") || (t == "bigint" && (f == "int32" || f == "int64"));
    }
    return false;
  }

  void CompareTypes(const Operation& where, const SchemaPlace& place, const Json& base,
                    const Json& rev) {
    Types bt = TypesOf(base), rt = TypesOf(rev);
    const Json& bf = Member(base, "format");
    const Json& rf = Member(rev, "format");
    bool type_changed = bt.names != rt.names;
    bool format_changed = bf != rf;
    if (!type_changed && !format_changed) return;
    if (bt.names.empty() || rt.names.empty()) return;  // no type on one side: composed schemas
    // Lists of several types (OpenAPI 3.1) change in ways of their own, not covered here.
    if (bt.names.size() > 1 || rt.names.size() > 1 ||
        (bt.nullable != rt.nullable && Member(rev, "type").is_array()))
      return;
    std::string sentence = fmt::format("{} changed type from {} to {}", Subject(place),
                                       TypeText(bt, bf), TypeText(rt, rf));
    const std::string prefix = Prefix(place);
    const bool request = place.direction == Direction::kRequest;
    // Requests must keep accepting what clients send (base flows into revision); responses
    // must keep being understood (revision flows into what clients expect, base).
    const Types& to = request ? rt : bt;
    const Types& from = request ? bt : rt;
    const Json& to_format = request ? rf : bf;
    const Json& from_format = request ? bf : rf;
    bool breaking = (type_changed && !TypeContained(to.names, from.names, place.strongly_typed)) ||
                    (format_changed && !FormatContained(to.names, to_format, from_format));
    if (!breaking) {
      bool swap = type_changed && !Covers(to.names, from.names);
      Add(prefix + (swap      ? "type-compatible"
                    : request ? "type-generalized"
                              : "type-specialized"),
          Level::kInfo, where, sentence);
      return;
    }
    bool widened_response = !request && type_changed && Covers(rt.names, bt.names);
    Add(prefix + (widened_response ? "type-generalized" : "type-changed"), Level::kBreaking, where,
        sentence);
  }

  void CompareNullable(const Operation& where, const SchemaPlace& place, const Json& base,
                       const Json& rev) {
    bool was = TypesOf(base).nullable, is = TypesOf(rev).nullable;
    if (was == is) return;
    const std::string prefix = Prefix(place);
    if (place.direction == Direction::kRequest) {
      Add(prefix + (is ? "became-nullable" : "became-not-nullable"),
          is ? Level::kInfo : Level::kBreaking, where,
          fmt::format("{} {}", Subject(place), is ? "became nullable" : "no longer accepts null"));
    } else {
      Add(prefix + (is ? "became-nullable" : "became-not-nullable"),
          is ? Level::kBreaking : Level::kInfo, where,
          fmt::format("{} {}", Subject(place), is ? "may now be null" : "is no longer null"));
    }
  }

  void CompareEnums(const Operation& where, const SchemaPlace& place, const Json& base,
                    const Json& rev) {
    const Json& be = Member(base, "enum");
    const Json& re = Member(rev, "enum");
    if (!be.is_array() && !re.is_array()) return;
    const bool request = place.direction == Direction::kRequest;
    const bool response_body = !request && place.site == Site::kBody;
    const std::string prefix = response_body ? "response-mediatype-" : Prefix(place);
    if (!be.is_array()) {
      Add(prefix + "became-enum", request ? Level::kBreaking : Level::kInfo, where,
          fmt::format("{} was restricted to the values {}", Subject(place), re.dump()));
      return;
    }
    if (!re.is_array()) {
      Add(prefix + "became-not-enum", request ? Level::kInfo : Level::kBreaking, where,
          fmt::format("{} is no longer restricted to a list of values", Subject(place)));
      return;
    }
    for (const auto& v : be) {
      if (std::find(re.begin(), re.end(), v) != re.end()) continue;
      Add(prefix + "enum-value-removed", request ? Level::kBreaking : Level::kInfo, where,
          fmt::format("{} no longer {} the value {}", Subject(place),
                      request ? "accepts" : "returns", Quoted(v)));
    }
    for (const auto& v : re) {
      if (std::find(be.begin(), be.end(), v) != be.end()) continue;
      Add(prefix + "enum-value-added", request ? Level::kInfo : Level::kBreaking, where,
          fmt::format("{} {} the new value {}", Subject(place), request ? "accepts" : "may return",
                      Quoted(v)));
    }
  }

  // Limits on what a request may carry: a limit that appears or tightens refuses requests that
  // were valid.
  void CompareRequestConstraints(const Operation& where, const SchemaPlace& place, const Json& base,
                                 const Json& rev) {
    const std::string prefix = Prefix(place);
    struct Limit {
      const char* key;
      const char* kind;
      bool upper;  // a maximum: tightening is lowering it
    };
    static constexpr Limit kLimits[] = {
        {"maxLength", "max-length", true}, {"minLength", "min-length", false},
        {"maximum", "max", true},          {"minimum", "min", false},
        {"maxItems", "max-items", true},   {"minItems", "min-items", false},
    };
    for (const Limit& l : kLimits) {
      auto b = Number(base, l.key), r = Number(rev, l.key);
      if (!r || (b && *b == *r)) continue;
      if (!b && place.site == Site::kParameter && std::string_view(l.key) == "maxItems") continue;
      if (!b) {
        Add(prefix + l.kind + "-set", Level::kBreaking, where,
            fmt::format("{} gained the limit {} {}", Subject(place), l.key, Num(*r)));
      } else if (l.upper ? *r < *b : *r > *b) {
        Add(prefix + l.kind + (l.upper ? "-decreased" : "-increased"), Level::kBreaking, where,
            fmt::format("{} tightened {} from {} to {}", Subject(place), l.key, Num(*b), Num(*r)));
      } else {
        Add(prefix + l.kind + (l.upper ? "-increased" : "-decreased"), Level::kInfo, where,
            fmt::format("{} relaxed {} from {} to {}", Subject(place), l.key, Num(*b), Num(*r)));
      }
    }
    if (place.site == Site::kBody) return;  // a whole body is no string to match
    Json bp = Member(base, "pattern"), rp = Member(rev, "pattern");
    if (bp == "") bp = nullptr;
    if (rp == "") rp = nullptr;
    if (rp.is_string() && !bp.is_string()) {
      Add(prefix + "pattern-added", Level::kBreaking, where,
          fmt::format("{} must now match the pattern {}", Subject(place), rp.get<std::string>()));
    } else if (rp.is_string() && bp.is_string() && rp != bp) {
      Add(prefix + "pattern-changed", Level::kWarning, where,
          fmt::format("{} changed its pattern from {} to {}", Subject(place), bp.get<std::string>(),
                      rp.get<std::string>()));
    }
  }

  void CompareProperties(const Operation& where, const SchemaPlace& place, const Json& base,
                         const Json& rev, int depth) {
    const Json& bp = Member(base, "properties");
    const Json& rp = Member(rev, "properties");
    if (!bp.is_object() && !rp.is_object()) return;
    // Properties that moved into (or out of) the alternatives of a oneOf or anyOf are still
    // there: the alternatives are compared with each other instead.
    auto alternatives = [](const Json& s) {
      return Member(s, "oneOf").is_array() || Member(s, "anyOf").is_array();
    };
    if ((!bp.is_object() && alternatives(base)) || (!rp.is_object() && alternatives(rev))) return;
    const bool request = place.direction == Direction::kRequest;
    std::set<std::string> base_required = StringSet(Member(base, "required"));
    std::set<std::string> rev_required = StringSet(Member(rev, "required"));
    auto name_of = [&](const std::string& name) {
      return place.site == Site::kProperty && !place.what.empty() ? place.what + "/" + name : name;
    };
    // A property only the other direction sees (readOnly in a request, writeOnly in a
    // response) is not part of this contract.
    const char* hidden = request ? "readOnly" : "writeOnly";
    if (bp.is_object()) {
      for (const auto& [name, raw] : bp.items()) {
        const Json& prop = base_.Resolve(raw);
        if (Truthy(prop, hidden)) continue;
        SchemaPlace inner{place.direction, Site::kProperty, name_of(name), place.strongly_typed};
        bool was_required = base_required.count(name) > 0;
        if (!rp.is_object() || !rp.contains(name)) {
          if (request) {
            Add(Truthy(prop, "deprecated") ? "request-property-removed-with-deprecation"
                                           : "request-property-removed",
                Truthy(prop, "deprecated") ? Level::kInfo : Level::kWarning, where,
                fmt::format("{} was removed", Subject(inner)));
          } else if (was_required) {
            Add("response-required-property-removed", Level::kBreaking, where,
                fmt::format("{}, which was always returned, was removed", Subject(inner)));
          } else {
            Add("response-optional-property-removed", Level::kInfo, where,
                fmt::format("the optional {} was removed", Subject(inner).substr(4)));
          }
          continue;
        }
        const Json& rprop = rev_.Resolve(rp[name]);
        bool is_required = rev_required.count(name) > 0;
        if (request && !was_required && is_required && !Truthy(rprop, hidden)) {
          bool with_default = Member(rprop, "default") != Json();
          Add(with_default ? "request-property-became-required-with-default"
                           : "request-property-became-required",
              Level::kBreaking, where, fmt::format("{} became required", Subject(inner)));
        } else if (request && was_required && !is_required) {
          Add("request-property-became-optional", Level::kInfo, where,
              fmt::format("{} became optional", Subject(inner)));
        } else if (!request && was_required && !is_required && !Truthy(rprop, hidden)) {
          Add("response-property-became-optional", Level::kBreaking, where,
              fmt::format("{} is no longer always returned", Subject(inner)));
        } else if (!request && !was_required && is_required) {
          Add("response-property-became-required", Level::kInfo, where,
              fmt::format("{} is now always returned", Subject(inner)));
        }
        CompareSchemas(where, inner, raw, rp[name], depth + 1);
      }
    }
    if (rp.is_object()) {
      for (const auto& [name, raw] : rp.items()) {
        if (bp.is_object() && bp.contains(name)) continue;
        const Json& prop = rev_.Resolve(raw);
        if (Truthy(prop, hidden)) continue;
        SchemaPlace inner{place.direction, Site::kProperty, name_of(name), place.strongly_typed};
        bool required = rev_required.count(name) > 0;
        if (request && required) {
          bool with_default = Member(prop, "default") != Json();
          Add(with_default ? "new-required-request-property-with-default"
                           : "new-required-request-property",
              Level::kBreaking, where,
              fmt::format("{} was added as required; clients that do not send it will be refused",
                          Subject(inner)));
        } else if (request) {
          Add("new-optional-request-property", Level::kInfo, where,
              fmt::format("{} was added as optional", Subject(inner)));
        } else {
          Add(required ? "response-required-property-added" : "response-optional-property-added",
              Level::kInfo, where, fmt::format("{} was added", Subject(inner)));
        }
      }
    }
  }

  // --- security ---

  // An operation's own requirements, else the document's: the alternatives a client may meet.
  static const Json& EffectiveSecurity(const Document& doc, const Json& op) {
    const Json& own = Member(op, "security");
    return own.is_array() ? own : Member(doc.root(), "security");
  }

  static bool AllowsAnonymous(const Json& security) {
    if (!security.is_array() || security.empty()) return true;
    for (const auto& req : security) {
      if (req.is_object() && req.empty()) return true;
    }
    return false;
  }

  static std::map<std::string, std::set<std::string>> Requirements(const Json& security) {
    std::map<std::string, std::set<std::string>> out;
    if (!security.is_array()) return out;
    for (const auto& req : security) {
      if (!req.is_object() || req.empty()) continue;
      std::set<std::string> scopes;
      for (const auto& [name, list] : req.items()) {
        for (const auto& s : StringSet(list)) scopes.insert(name + ":" + s);
      }
      out[RequirementKey(req)] = scopes;
    }
    return out;
  }

  void CompareOperationSecurity(const Operation& where, const Json& op, const Json& rop) {
    if (AllowsAnonymous(EffectiveSecurity(base_, op)) &&
        !AllowsAnonymous(EffectiveSecurity(rev_, rop))) {
      Add("api-security-anonymous-access-removed", Level::kBreaking, where,
          "the operation no longer accepts requests without credentials");
    }
    auto base = Requirements(EffectiveSecurity(base_, op));
    auto rev = Requirements(EffectiveSecurity(rev_, rop));
    const bool now_open = AllowsAnonymous(EffectiveSecurity(rev_, rop));
    for (const auto& [key, scopes] : base) {
      auto it = rev.find(key);
      if (it == rev.end()) {
        if (now_open) continue;  // dropping credentials altogether locks nobody out
        Add("api-security-removed", Level::kBreaking, where,
            fmt::format("the security requirement {} was removed from the operation", key));
        continue;
      }
      for (const auto& s : it->second) {
        if (!scopes.count(s)) {
          Add("api-security-scope-added", Level::kBreaking, where,
              fmt::format("the security requirement {} now needs the scope {}", key, s));
        }
      }
      for (const auto& s : scopes) {
        if (!it->second.count(s)) {
          Add("api-security-scope-removed", Level::kInfo, where,
              fmt::format("the security requirement {} no longer needs the scope {}", key, s));
        }
      }
    }
    for (const auto& [key, scopes] : rev) {
      if (!base.count(key)) {
        Add("api-security-added", Level::kInfo, where,
            fmt::format("the security requirement {} was added to the operation", key));
      }
    }
  }

  // --- components ---

  void CompareComponentSchemas() {
    const Json& base = Member(Member(base_.root(), "components"), "schemas");
    const Json& rev = Member(Member(rev_.root(), "components"), "schemas");
    if (base.is_object()) {
      for (const auto& [name, schema] : base.items()) {
        if (!rev.is_object() || !rev.contains(name)) {
          ++out_.summary.schemas.deleted;
          Add("api-schema-removed", Level::kInfo, {},
              fmt::format("the component schema {} was removed", name));
        } else if (schema != rev[name]) {
          ++out_.summary.schemas.modified;
        }
      }
    }
    if (rev.is_object()) {
      for (const auto& [name, schema] : rev.items()) {
        if (!base.is_object() || !base.contains(name)) ++out_.summary.schemas.added;
      }
    }
  }

  const Document& base_;
  const Document& rev_;
  ApiDiff out_;
  std::set<std::pair<std::string, std::string>> active_refs_;
};

}  // namespace

std::string_view ChangeLevelName(ChangeLevel level) {
  switch (level) {
    case ChangeLevel::kInfo:
      return "info";
    case ChangeLevel::kWarning:
      return "warning";
    case ChangeLevel::kBreaking:
      return "breaking";
  }
  return "info";
}

Result<ApiDiff> DiffOpenApi(const std::string& base, const std::string& revision) {
  auto b = Document::Parse(base);
  if (!b.ok()) return b.status().WithContext("the old spec cannot be read");
  auto r = Document::Parse(revision);
  if (!r.ok()) return r.status().WithContext("the new spec cannot be read");
  return Differ(*b, *r).Run();
}

const std::vector<std::string>& CoveredChangeKinds() {
  // Warning and breaking kinds only: the ones that decide has_breaking_changes.
  static const std::vector<std::string> kKinds = [] {
    std::vector<std::string> kinds = {
        "api-path-removed-without-deprecation",
        "api-removed-without-deprecation",
        "api-security-anonymous-access-removed",
        "api-security-removed",
        "api-security-scope-added",
        "request-parameter-removed",
        "new-required-request-parameter",
        "new-request-path-parameter",
        "request-parameter-became-required",
        "request-body-removed",
        "request-body-added-required",
        "request-body-became-required",
        "request-body-media-type-removed",
        "new-required-request-property",
        "new-required-request-property-with-default",
        "request-property-became-required",
        "request-property-became-required-with-default",
        "request-property-removed",
        "response-success-status-removed",
        "response-media-type-removed",
        "response-required-property-removed",
        "response-property-became-optional",
        "response-mediatype-enum-value-added",
        "response-mediatype-became-not-enum",
        "response-property-enum-value-added",
        "response-property-became-not-enum",
    };
    for (const char* site : {"request-parameter-", "request-body-", "request-property-"}) {
      for (const char* check :
           {"type-changed", "became-not-nullable", "enum-value-removed", "became-enum",
            "max-length-set", "max-length-decreased", "min-length-set", "min-length-increased",
            "max-set", "max-decreased", "min-set", "min-increased", "max-items-set",
            "max-items-decreased", "min-items-set", "min-items-increased", "pattern-added",
            "pattern-changed"}) {
        std::string kind = std::string(site) + check;
        if (kind == "request-parameter-max-items-set" || kind == "request-body-pattern-added" ||
            kind == "request-body-pattern-changed") {
          continue;  // not reported there (oasdiff has no such check either)
        }
        kinds.push_back(kind);
      }
    }
    for (const char* site : {"response-body-", "response-property-"}) {
      for (const char* check : {"type-changed", "type-generalized", "became-nullable"}) {
        kinds.push_back(std::string(site) + check);
      }
    }
    return kinds;
  }();
  return kKinds;
}

}  // namespace slipway::ctrl::openapi
