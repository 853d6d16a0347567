// The contract diff of two OpenAPI 3.x documents: what changed between the spec an environment
// serves now (base) and the one a new deployment brings (revision), and which of those changes
// break existing clients.
//
// Each change has a kind named after oasdiff's check id where oasdiff has one
// ("api-path-removed-without-deprecation", "request-parameter-removed", ...), so our verdicts
// can be compared with the field's reference tool kind by kind, and a level: info (compatible),
// warning (may break some clients), breaking. Requests are judged contravariantly (the server
// must keep accepting what clients send), responses covariantly (clients must keep
// understanding what the server returns).
//
// Promise: pure and deterministic (the same documents give the same changes in the same order),
// thread-safe, and bounded on recursive schemas (each pair of schemas is compared once per
// walk).
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace slipway::ctrl::openapi {

enum class ChangeLevel { kInfo = 1, kWarning = 2, kBreaking = 3 };

// "info", "warning", "breaking".
std::string_view ChangeLevelName(ChangeLevel level);

struct ApiChange {
  std::string kind;  // oasdiff's check id, e.g. "request-parameter-removed"
  ChangeLevel level = ChangeLevel::kInfo;
  std::string path;    // "/pets/{id}" ("" for document-wide changes)
  std::string method;  // "GET" ("" for document-wide changes)
  std::string operation_id;
  std::string text;  // one sentence: "the required query parameter 'limit' was added"
};

struct Counts {
  int added = 0;
  int deleted = 0;
  int modified = 0;
};

struct DiffSummary {
  Counts paths;
  Counts operations;
  Counts schemas;  // components.schemas
};

struct ApiDiff {
  DiffSummary summary;
  std::vector<ApiChange> changes;  // breaking first, then warnings, then info
  bool has_breaking_changes = false;
  int breaking = 0, warnings = 0;
};

// base and revision are OpenAPI documents as YAML or JSON text. InvalidArgument names which of
// the two could not be read and why.
Result<ApiDiff> DiffOpenApi(const std::string& base, const std::string& revision);

// Every change kind this engine can report, for comparisons with oasdiff restricted to them.
const std::vector<std::string>& CoveredChangeKinds();

}  // namespace slipway::ctrl::openapi
