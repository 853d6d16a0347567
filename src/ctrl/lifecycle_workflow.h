// The durable workflows that change a deployment after it was made, each keyed by its project
// like deploys, so they never interleave with a deploy of the same project:
//   "switch" — rollback and promote: an environment's host (for a rollback also the target's
//              branch host) moves to an earlier or another READY deployment. Its instances are
//              started again from its pinned image first when they no longer run, and the
//              hosts move only once every one is ready. No build.
//   "delete" — the deployment's instances, routes and hosts go; its context too, unless another
//              deployment or build uses it; the record stays, marked DELETED.
// Validation (which deployment, whether it may be switched to or deleted) happens in the
// services before a run starts; the runs themselves only do, step by journaled step.
#pragma once

#include <string>
#include <string_view>

#include "ctrl/deploy_workflow.h"

namespace slipway::ctrl {

inline constexpr std::string_view kSwitchWorkflow = "switch";
inline constexpr std::string_view kDeleteWorkflow = "delete";

struct SwitchInput {
  std::string deployment_id;  // the deployment the hosts move to
  std::string environment;    // whose host moves
  bool with_branch_host = false;  // rollback: the target's branch host goes back too
};
std::string EncodeSwitchInput(const SwitchInput& in);

// Registers both workflows on the engine. deps must outlive the engine.
void RegisterLifecycleWorkflows(workflow::WorkflowEngine& engine, const WorkflowDeps& deps);

}  // namespace slipway::ctrl
