#include "ctrl/retention.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "ctrl/deployment_ops.h"

namespace slipway::ctrl {
namespace {

using Json = nlohmann::json;

bool InProgress(const std::string& status) {
  return status != "READY" && status != "FAILED" && status != "DELETED";
}

}  // namespace

RetentionPlan PlanRetention(const std::vector<RetentionCandidate>& deployments,
                            const std::set<std::string>& protected_keys, int64_t now_ms,
                            const RetentionPolicy& policy) {
  // Newest first within each environment.
  std::map<std::string, std::vector<const RetentionCandidate*>> by_env;
  for (const auto& d : deployments) by_env[d.environment].push_back(&d);
  std::set<std::string> kept;
  for (auto& [env, list] : by_env) {
    std::sort(list.begin(), list.end(), [](const auto* a, const auto* b) {
      return a->created_at_ms != b->created_at_ms ? a->created_at_ms > b->created_at_ms
                                                  : a->id > b->id;
    });
    for (size_t i = 0; i < list.size() && static_cast<int>(i) < policy.keep; ++i) {
      if (list[i]->status != "DELETED") kept.insert(list[i]->id);
    }
  }
  std::set<std::string> needed_keys = protected_keys;
  for (const auto& d : deployments) {
    if (d.live || InProgress(d.status)) kept.insert(d.id);
    if (kept.count(d.id) && !d.context_key.empty()) needed_keys.insert(d.context_key);
  }

  RetentionPlan plan;
  std::set<std::string> deleting;
  for (const auto& d : deployments) {
    if (d.status == "READY" && !d.live && d.stopped_at_ms == 0) {
      const int64_t since = d.superseded_at_ms != 0 ? d.superseded_at_ms : d.updated_at_ms;
      if (now_ms - since >= policy.grace.count()) plan.stop.push_back(d.id);
    }
    if (!kept.count(d.id) && !d.context_key.empty() && d.context_deleted_at_ms == 0 &&
        !needed_keys.count(d.context_key) && deleting.insert(d.context_key).second) {
      plan.delete_contexts.push_back(d.context_key);
    }
  }
  std::sort(plan.stop.begin(), plan.stop.end());
  std::sort(plan.delete_contexts.begin(), plan.delete_contexts.end());
  return plan;
}

std::string EncodeRetentionPlan(const RetentionPlan& plan) {
  return Json{{"stop", plan.stop}, {"delete_contexts", plan.delete_contexts}}.dump();
}

Result<RetentionPlan> DecodeRetentionPlan(const std::string& text) {
  Json j = Json::parse(text, nullptr, false);
  if (!j.is_object() || !j["stop"].is_array() || !j["delete_contexts"].is_array()) {
    return Status::Internal("unreadable retention plan: " + text);
  }
  return RetentionPlan{j["stop"].get<std::vector<std::string>>(),
                       j["delete_contexts"].get<std::vector<std::string>>()};
}

namespace {

Result<RetentionPlan> PlanNow(const WorkflowDeps& deps, const std::string& project_id,
                              const RetentionPolicy& policy) {
  SLIPWAY_ASSIGN_OR_RETURN(auto candidates, deps.store->RetentionCandidates(project_id));
  SLIPWAY_ASSIGN_OR_RETURN(auto protected_keys, deps.store->StandaloneBuildContexts(project_id));
  return PlanRetention(candidates, protected_keys, deps.store->NowMs(), policy);
}

Status RunRetention(const WorkflowDeps& deps, const RetentionPolicy& policy,
                    workflow::RunContext& ctx) {
  const std::string& project_id = ctx.input();
  SLIPWAY_ASSIGN_OR_RETURN(std::string planned, ctx.Step("plan", [&]() -> Result<std::string> {
                             SLIPWAY_ASSIGN_OR_RETURN(RetentionPlan p,
                                                      PlanNow(deps, project_id, policy));
                             return EncodeRetentionPlan(p);
                           }));
  SLIPWAY_ASSIGN_OR_RETURN(RetentionPlan plan, DecodeRetentionPlan(planned));

  SLIPWAY_ASSIGN_OR_RETURN(std::string stopped, ctx.Step("stop", [&]() -> Result<std::string> {
    int n = 0;
    for (const auto& id : plan.stop) {
      SLIPWAY_ASSIGN_OR_RETURN(DeploymentRecord d, deps.store->GetDeploymentById(id));
      if (!d.live_environments.empty() || d.status != "READY") continue;  // live again since
      DeploymentOps ops(deps, ctx, d);
      if (ops.RequireKrane().ok()) SLIPWAY_RETURN_IF_ERROR(ops.StopInstances().status());
      SLIPWAY_RETURN_IF_ERROR(deps.store->MarkStopped(id, true));
      spdlog::info("retention: stopped the instances of {}, superseded in {}", id, d.environment);
      ++n;
    }
    return fmt::format("{} deployment(s) stopped", n);
  }));

  SLIPWAY_ASSIGN_OR_RETURN(std::string deleted, ctx.Step("contexts", [&]() -> Result<std::string> {
    // Only what a plan made now still deletes: a context that became referenced since the
    // journaled plan (a redeploy, a new deploy of the same source) stays.
    SLIPWAY_ASSIGN_OR_RETURN(RetentionPlan fresh, PlanNow(deps, project_id, policy));
    std::set<std::string> still(fresh.delete_contexts.begin(), fresh.delete_contexts.end());
    int n = 0;
    for (const auto& key : plan.delete_contexts) {
      if (!still.count(key)) continue;
      Status del = deps.s3->DeleteObject(deps.bucket, key);
      if (!del.ok() && del.code() != Code::kNotFound) {
        return del.WithContext("deleting the context " + key);
      }
      SLIPWAY_RETURN_IF_ERROR(deps.store->MarkContextDeleted(project_id, key));
      ++n;
    }
    return fmt::format("{} context(s) deleted", n);
  }));
  ctx.SetOutput(stopped + "; " + deleted);
  return Status::Ok();
}

}  // namespace

void RegisterRetentionWorkflow(workflow::WorkflowEngine& engine, const WorkflowDeps& deps,
                               const RetentionPolicy& policy) {
  engine.Register(std::string(kRetentionWorkflow), [&deps, &policy](workflow::RunContext& ctx) {
    return RunRetention(deps, policy, ctx);
  });
}

RetentionScheduler::RetentionScheduler(Store& store, workflow::WorkflowEngine& engine,
                                       std::chrono::milliseconds interval)
    : store_(store), engine_(engine), interval_(interval), thread_([this] { Loop(); }) {}

RetentionScheduler::~RetentionScheduler() { Stop(); }

void RetentionScheduler::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RetentionScheduler::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (cv_.wait_for(lock, interval_, [this] { return stopping_; })) return;
    lock.unlock();
    Tick();
    lock.lock();
  }
}

void RetentionScheduler::Tick() {
  auto projects = store_.ProjectsWithDeployments();
  if (!projects.ok()) {
    spdlog::warn("retention: cannot list the projects: {}", projects.status().message());
    return;
  }
  for (const auto& project_id : *projects) {
    if (auto it = last_run_.find(project_id); it != last_run_.end()) {
      auto run = engine_.GetRun(it->second);
      if (run.ok() && (run->status == workflow::RunStatus::kPending ||
                       run->status == workflow::RunStatus::kRunning)) {
        continue;  // the previous pass has not finished (a deploy of the project is ahead of it)
      }
    }
    auto started = engine_.Start(kRetentionWorkflow, project_id, project_id);
    if (started.ok()) {
      last_run_[project_id] = *started;
    } else {
      spdlog::warn("retention: cannot start a run for project {}: {}", project_id,
                   started.status().message());
    }
  }
}

}  // namespace slipway::ctrl
