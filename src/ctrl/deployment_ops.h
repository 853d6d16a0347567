// What the control plane's workflows do to one deployment's instances and hosts, each a body
// for a journaled step: schedule the instances on krane, wait until every one is ready, move
// hosts to the deployment (gateway routes), remove the instances. The deploy workflow runs them
// in the order of a deployment; rollback, promote and delete reuse them.
//
// Every operation is idempotent (krane's create and delete are, routes and domains are upserts),
// so a step replayed after a crash between its work and its journal entry repeats harmlessly.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "ctrl/deploy_workflow.h"
#include "ctrl/routing.h"
#include "ctrl/store.h"
#include "workflow/engine.h"

namespace slipway::ctrl {

class DeploymentOps {
 public:
  DeploymentOps(const WorkflowDeps& deps, workflow::RunContext& ctx, const DeploymentRecord& d)
      : deps_(deps), ctx_(ctx), d_(d) {}

  // FailedPrecondition when this ctrl has no krane (or no partition database) to run on.
  Status RequireKrane() const;

  // krane's CreateDeployment with the deployment's resources and this image.
  Result<std::string> Schedule(const std::string& image);

  // Follows krane's WatchDeployment stream and asks GetDeployment every wait_interval besides
  // (the fallback for a krane without the stream or a broken one, and the safety net against a
  // missed event), until every replica is RUNNING (the instances, as JSON; the moment the
  // stream says so), one is FAILED (fails at once with krane's reason: exit code and log tail)
  // or the deadline passes (fails naming the instances that are not ready). Each answer is
  // mirrored into the partition database. A krane that is briefly unreachable is asked again
  // until the deadline.
  Result<std::string> WaitForInstances(std::chrono::system_clock::time_point deadline);

  // Whether krane runs every replica now (one question, no waiting).
  Result<bool> AllRunning();

  // Claims the hosts for this deployment (domains; for an environment host also the
  // environment's live deployment) in one main-database transaction, then moves their gateway
  // routes in one partition transaction, and waits (bounded) until every live gateway serves
  // them. Returns the hostnames, space-separated.
  Result<std::string> MoveHosts(const std::vector<DeploymentHost>& hosts,
                                const std::string& environment);

  // Removes krane's instances and the partition rows (instances, routes) of the deployment.
  Result<std::string> RemoveInstances();

  // Removes krane's instances but keeps the routes, marked stopped: the deployment's hosts
  // answer that it is stopped and how to start it again.
  Result<std::string> StopInstances();

  int64_t Replicas() const { return d_.replicas > 0 ? d_.replicas : 1; }

 private:
  template <typename Request>
  void SetRef(Request& req) const;
  // krane's DeleteDeployment: how many instances it removed (0 when it had none).
  Result<int> DeleteOnKrane();

  const WorkflowDeps& deps_;
  workflow::RunContext& ctx_;
  const DeploymentRecord& d_;
};

}  // namespace slipway::ctrl
