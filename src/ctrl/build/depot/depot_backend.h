// The depot build backend: every image is built on a BuildKit machine Depot provisions for the
// build, following the flow of Depot's own Go SDK over Depot's Connect API (binary protobuf):
//
//   project   one Depot project per project of ours ("slipway-<project id>", DEPOT_REGION, cache
//             DEPOT_CACHE_KEEP_GB / _DAYS), recorded in ctrl's database; found by name on Depot
//             before one is created, so a ctrl that died between Depot's answer and its own write
//             does not create a second;
//   register  depot.cli.v1 CreateBuild with the organization token: a build id and a one-time
//             build token, which every later call of the build uses;
//   machine   GetBuildKitConnection until Depot says active (endpoint, server name, mTLS
//             certificates); ReportBuildHealth every 5 s from the first ask until the build is
//             over, on every path (depot-go's reporter outlives a failed acquire);
//   build     the buildkit backend's Solve on that machine over mutual TLS: the context is the
//             presigned GET URL, the image <DEPOT_REGISTRY>/<depot project>:<project>-<deploy>
//             pushed with the token as registry password (user x-token) and recorded pinned by
//             digest; krane pulls it with the same credentials; the layer cache is the Depot
//             project's own, on its machines;
//   finish    FinishBuild with what really happened: success, the builder's error, or canceled.
//
// A multi-platform image is built on the machine of its first platform (BuildKit builds the
// others there). The build token of an open Depot build is recorded, so an attempt that follows
// a ctrl crash finishes the build the dead ctrl left open (canceled) before starting its own.
#pragma once

#include <memory>

#include "ctrl/build/backend.h"
#include "ctrl/build/depot/depot_records.h"

namespace slipway::ctrl::build::depot {

// InvalidArgument with a sentence saying what to set when DEPOT_TOKEN is missing or a setting
// is out of range.
Result<std::unique_ptr<BuildBackend>> MakeDepotBackend(const BuildBackendConfig& config,
                                                       DepotRecords* records);

// The name of the Depot project that holds one project's builds: "slipway-<project id>".
std::string DepotProjectName(const std::string& project_id);

}  // namespace slipway::ctrl::build::depot
