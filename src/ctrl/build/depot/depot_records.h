// What the depot backend must remember across builds and across ctrl restarts, kept in ctrl's
// database: the Depot project of each of our projects (so a project never gets a second one),
// and the Depot build each of our builds has open (so a build a dead ctrl started is finished
// on Depot by the attempt that replaces it). Implementations are thread-safe.
#pragma once

#include <string>

#include "base/status.h"

namespace slipway::ctrl::build::depot {

struct OpenDepotBuild {
  std::string build_id;     // Depot's; empty: none open
  std::string build_token;  // the one-time token Depot gave it, which FinishBuild needs
};

class DepotRecords {
 public:
  virtual ~DepotRecords() = default;
  // The Depot project id recorded for our project; empty when none is.
  virtual Result<std::string> DepotProjectOf(const std::string& project_id) = 0;
  // Records depot_project_id unless the project already has one; returns the one that holds
  // afterwards (another ctrl's, when it was first).
  virtual Result<std::string> RecordDepotProject(const std::string& project_id,
                                                 const std::string& depot_project_id) = 0;
  virtual Result<OpenDepotBuild> OpenDepotBuildOf(const std::string& build_id) = 0;
  // Records (or, with an empty OpenDepotBuild, clears) the Depot build open for our build.
  virtual Status SetOpenDepotBuild(const std::string& build_id, const OpenDepotBuild& open) = 0;
};

}  // namespace slipway::ctrl::build::depot
