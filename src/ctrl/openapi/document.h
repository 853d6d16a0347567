// An OpenAPI 3.x document as a JSON tree, parsed from YAML or JSON text, with its local
// references ("$ref": "#/components/schemas/Pet") followed on demand.
//
// Promise: Parse never throws; a document that is not YAML/JSON, or whose root is not an object
// with an "openapi" or "swagger" version, is InvalidArgument with a sentence saying why. Resolve
// never loops: a reference chain that comes back to itself, or points outside the document, ends
// at the last node reached (and a reference to another file is left unresolved). A Document is
// immutable after Parse, so it may be read from several threads.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace slipway::ctrl::openapi {

using Json = nlohmann::json;

class Document {
 public:
  // YAML is a superset of JSON, so one parser reads both.
  static Result<Document> Parse(const std::string& text);

  const Json& root() const { return root_; }
  // The node a "$ref" chain starting at node ends on; node itself when it is no reference.
  const Json& Resolve(const Json& node) const;
  // The node at a JSON pointer inside this document ("#/components/schemas/Pet"); null when
  // there is none.
  const Json* Pointer(const std::string& ref) const;

 private:
  Json root_;
};

// A YAML document as JSON: mappings become objects, sequences arrays, plain scalars numbers,
// booleans or null where YAML 1.2's core schema says so, everything else strings.
Result<Json> YamlToJson(const std::string& text);

}  // namespace slipway::ctrl::openapi
