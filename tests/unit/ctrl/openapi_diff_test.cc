// The OpenAPI contract diff engine on small hand-written documents: parsing YAML and JSON,
// following local references (also cyclic ones), and the verdicts on the change kinds it covers.
#include <gtest/gtest.h>

#include <algorithm>

#include "ctrl/openapi/diff.h"
#include "ctrl/openapi/document.h"

namespace slipway::ctrl::openapi {
namespace {

const char* kBase = R"(
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /pets:
    get:
      operationId: listPets
      parameters:
        - {name: limit, in: query, schema: {type: integer}}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {type: array, items: {$ref: "#/components/schemas/Pet"}}
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [name]
              properties:
                name: {type: string}
                kind: {type: string, enum: [cat, dog]}
      responses:
        "201": {description: created}
  /pets/{id}:
    get:
      responses:
        "200": {description: ok}
components:
  schemas:
    Pet:
      type: object
      required: [id]
      properties:
        id: {type: integer}
        status: {type: string, enum: [available, sold]}
        parent: {$ref: "#/components/schemas/Pet"}
)";

ApiDiff MustDiff(const std::string& base, const std::string& revision) {
  auto d = DiffOpenApi(base, revision);
  EXPECT_TRUE(d.ok()) << d.status().message();
  return d.ok() ? *d : ApiDiff{};
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  size_t pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

const ApiChange* Find(const ApiDiff& d, const std::string& kind) {
  auto it = std::find_if(d.changes.begin(), d.changes.end(),
                         [&](const ApiChange& c) { return c.kind == kind; });
  return it == d.changes.end() ? nullptr : &*it;
}

TEST(OpenApiDocument, ParsesYamlAndJsonAndFollowsLocalReferences) {
  auto yaml = Document::Parse("openapi: 3.0.0\nx: {$ref: '#/y'}\ny: {a: 1, b: 'true', c: true}\n");
  ASSERT_TRUE(yaml.ok()) << yaml.status().message();
  const Json& y = yaml->Resolve(yaml->root()["x"]);
  EXPECT_EQ(y["a"], 1);
  EXPECT_EQ(y["b"], "true");  // quoted: a string
  EXPECT_EQ(y["c"], true);
  auto json =
      Document::Parse(R"({"openapi": "3.1.0", "a": {"$ref": "#/b"}, "b": {"$ref": "#/a"}})");
  ASSERT_TRUE(json.ok());
  // A cycle of references ends instead of looping.
  EXPECT_TRUE(json->Resolve(json->root()["a"]).contains("$ref"));
  EXPECT_EQ(json->Pointer("#/nothing/here"), nullptr);
}

TEST(OpenApiDocument, RefusesWhatIsNotOpenApiWithASentence) {
  auto d = Document::Parse("just: [unclosed");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kInvalidArgument);
  auto e = Document::Parse("title: no version\n");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("openapi"), std::string::npos);
  auto diff = DiffOpenApi("openapi: 3.0.0\n", "[1, 2]");
  ASSERT_FALSE(diff.ok());
  EXPECT_NE(diff.status().message().find("new spec"), std::string::npos) << diff.status().message();
}

TEST(OpenApiDiff, IdenticalDocumentsHaveNoChanges) {
  ApiDiff d = MustDiff(kBase, kBase);
  EXPECT_TRUE(d.changes.empty());
  EXPECT_FALSE(d.has_breaking_changes);
}

TEST(OpenApiDiff, RemovedPathIsBreakingPerOperationAndCounted) {
  ApiDiff d = MustDiff(
      kBase,
      Replace(kBase,
              "  /pets/{id}:\n    get:\n      responses:\n        \"200\": {description: ok}\n",
              ""));
  const ApiChange* c = Find(d, "api-path-removed-without-deprecation");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->level, ChangeLevel::kBreaking);
  EXPECT_EQ(c->path, "/pets/{id}");
  EXPECT_EQ(c->method, "GET");
  EXPECT_TRUE(d.has_breaking_changes);
  EXPECT_EQ(d.summary.paths.deleted, 1);
  EXPECT_EQ(d.summary.operations.deleted, 1);
}

TEST(OpenApiDiff, AddedPathIsInfoOnly) {
  ApiDiff d = MustDiff(
      kBase,
      Replace(kBase, "paths:\n",
              "paths:\n  /new:\n    get:\n      responses:\n        \"200\": {description: ok}\n"));
  EXPECT_FALSE(d.has_breaking_changes);
  EXPECT_EQ(d.summary.paths.added, 1);
  ASSERT_NE(Find(d, "endpoint-added"), nullptr);
}

TEST(OpenApiDiff, ParameterChanges) {
  ApiDiff removed = MustDiff(
      kBase, Replace(kBase, "        - {name: limit, in: query, schema: {type: integer}}\n",
                     "        []\n"));
  ASSERT_NE(Find(removed, "request-parameter-removed"), nullptr);
  EXPECT_EQ(Find(removed, "request-parameter-removed")->level, ChangeLevel::kWarning);
  EXPECT_EQ(Find(removed, "request-parameter-removed")->operation_id, "listPets");

  ApiDiff required = MustDiff(kBase, Replace(kBase, "{name: limit, in: query,",
                                             "{name: limit, in: query, required: true,"));
  ASSERT_NE(Find(required, "request-parameter-became-required"), nullptr);
  EXPECT_TRUE(required.has_breaking_changes);

  ApiDiff added = MustDiff(
      kBase, Replace(kBase, "        - {name: limit",
                     "        - {name: q, in: query, required: true}\n        - {name: limit"));
  ASSERT_NE(Find(added, "new-required-request-parameter"), nullptr);

  // A query parameter is text: integer to string accepts what it did; string to integer does not.
  ApiDiff widened = MustDiff(kBase, Replace(kBase, "in: query, schema: {type: integer}",
                                            "in: query, schema: {type: string}"));
  EXPECT_FALSE(widened.has_breaking_changes);
}

TEST(OpenApiDiff, RequestBodyChanges) {
  ApiDiff became = MustDiff(kBase, Replace(kBase, "required: [name]", "required: [name, kind]"));
  ASSERT_NE(Find(became, "request-property-became-required"), nullptr);
  ApiDiff added = MustDiff(kBase, Replace(kBase, "required: [name]\n              properties:\n",
                                          "required: [name, age]\n              properties:\n      "
                                          "          age: {type: integer}\n"));
  ASSERT_NE(Find(added, "new-required-request-property"), nullptr);
  ApiDiff enum_removed = MustDiff(kBase, Replace(kBase, "enum: [cat, dog]", "enum: [cat]"));
  ASSERT_NE(Find(enum_removed, "request-property-enum-value-removed"), nullptr);
  ApiDiff enum_added =
      MustDiff(kBase, Replace(kBase, "enum: [cat, dog]", "enum: [cat, dog, fish]"));
  EXPECT_FALSE(enum_added.has_breaking_changes);
  ApiDiff type = MustDiff(kBase, Replace(kBase, "name: {type: string}", "name: {type: integer}"));
  ASSERT_NE(Find(type, "request-property-type-changed"), nullptr);
}

TEST(OpenApiDiff, ResponseChangesThroughRecursiveReferences) {
  ApiDiff removed = MustDiff(kBase, Replace(Replace(kBase, "required: [id]", "required: []"),
                                            "        id: {type: integer}\n", ""));
  const ApiChange* c = Find(removed, "response-required-property-removed");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->path, "/pets");
  ApiDiff format =
      MustDiff(kBase, Replace(kBase, "id: {type: integer}", "id: {type: string, format: uuid}"));
  ASSERT_NE(Find(format, "response-property-type-changed"), nullptr);
  ApiDiff enum_added =
      MustDiff(kBase, Replace(kBase, "enum: [available, sold]", "enum: [available, sold, lost]"));
  ASSERT_NE(Find(enum_added, "response-property-enum-value-added"), nullptr);
  ApiDiff enum_removed =
      MustDiff(kBase, Replace(kBase, "enum: [available, sold]", "enum: [available]"));
  EXPECT_FALSE(enum_removed.has_breaking_changes);
  ApiDiff status = MustDiff(
      kBase, Replace(kBase, "\"201\": {description: created}", "\"202\": {description: accepted}"));
  ASSERT_NE(Find(status, "response-success-status-removed"), nullptr);
}

TEST(OpenApiDiff, SecurityAddedToAnOpenOperationIsBreaking) {
  ApiDiff d =
      MustDiff(kBase, Replace(kBase, "      operationId: listPets\n",
                              "      operationId: listPets\n      security: [{key: []}]\n"));
  ASSERT_NE(Find(d, "api-security-anonymous-access-removed"), nullptr);
  EXPECT_TRUE(d.has_breaking_changes);
}

TEST(OpenApiDiff, BreakingChangesComeFirstAndEveryKindIsCovered) {
  ApiDiff d = MustDiff(
      kBase,
      Replace(Replace(kBase, "enum: [cat, dog]", "enum: [cat, dog, fish]"),
              "        - {name: limit, in: query, schema: {type: integer}}\n",
              "        - {name: limit, in: query, required: true, schema: {type: integer}}\n"));
  ASSERT_GE(d.changes.size(), 2u);
  EXPECT_EQ(d.changes.front().level, ChangeLevel::kBreaking);
  EXPECT_EQ(d.changes.back().level, ChangeLevel::kInfo);
  const auto& kinds = CoveredChangeKinds();
  for (const auto& c : d.changes) {
    if (c.level == ChangeLevel::kInfo) continue;
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), c.kind), kinds.end()) << c.kind;
  }
}

}  // namespace
}  // namespace slipway::ctrl::openapi
