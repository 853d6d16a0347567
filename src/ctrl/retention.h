// The retention policy: what of a project's past deployments is kept, and a periodic durable
// job that applies it.
//
//  - A deployment that is no longer live keeps running for a grace period (so a rollback to it
//    is instant), then its instances are stopped; its own host then answers a 503 page saying
//    so and how to roll back to it (which starts it again).
//  - The contexts of every live deployment, of the newest `keep` deployments of each
//    environment (the rollback and redeploy targets), of every deployment still in progress and
//    of every standalone build are kept; the other contexts are deleted from the object store.
//    Images are left to the registry.
//
// The job runs per project as the durable workflow "retention", keyed by the project like
// deploys, so it never interleaves with a deploy, a rollback or a delete of that project, and
// never looks at another project (or workspace). Its plan is journaled; a context is deleted
// only if a plan made again just before the deletion still says so, so a crash and a resumed
// run never delete what became referenced in between.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ctrl/deploy_workflow.h"

namespace slipway::ctrl {

inline constexpr std::string_view kRetentionWorkflow = "retention";

struct RetentionPolicy {
  std::chrono::milliseconds grace{15 * 60 * 1000};    // RETENTION_GRACE
  int keep = 10;                                       // RETENTION_KEEP, per environment
  std::chrono::milliseconds interval{60 * 1000};       // RETENTION_INTERVAL; 0: never
};

struct RetentionPlan {
  std::vector<std::string> stop;             // deployments whose instances are stopped
  std::vector<std::string> delete_contexts;  // context keys deleted from the object store
};

// The policy applied to one project's deployments; protected_keys are contexts that something
// outside the deployments uses (standalone builds). Pure: the same inputs, the same plan.
RetentionPlan PlanRetention(const std::vector<RetentionCandidate>& deployments,
                            const std::set<std::string>& protected_keys, int64_t now_ms,
                            const RetentionPolicy& policy);

std::string EncodeRetentionPlan(const RetentionPlan& plan);
Result<RetentionPlan> DecodeRetentionPlan(const std::string& text);

// Registers the "retention" workflow (input: the project id). deps and policy must outlive the
// engine.
void RegisterRetentionWorkflow(workflow::WorkflowEngine& engine, const WorkflowDeps& deps,
                               const RetentionPolicy& policy);

// Starts a retention run for every project each interval, unless the project's previous run
// has not finished. Stop() (or the destructor) ends the ticks; runs go on in the engine.
class RetentionScheduler {
 public:
  RetentionScheduler(Store& store, workflow::WorkflowEngine& engine, std::chrono::milliseconds interval);
  ~RetentionScheduler();
  void Stop();

 private:
  void Loop();
  void Tick();

  Store& store_;
  workflow::WorkflowEngine& engine_;
  std::chrono::milliseconds interval_;
  std::map<std::string, std::string> last_run_;  // project id -> run id
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace slipway::ctrl
