#include "cli/deployment_view.h"

#include <fmt/format.h>

#include <chrono>

#include "cli/progress.h"
#include "slipway/ctrl/v1/deployment.pb.h"

namespace slipway::cli {
namespace {

namespace pb = slipway::ctrl::v1;

std::string ElapsedText(int64_t ms) {
  return FormatElapsed(std::chrono::duration<double>(static_cast<double>(ms) / 1000.0));
}

}  // namespace

std::string DeploymentStatusName(int status) {
  std::string name = pb::DeploymentStatus_Name(static_cast<pb::DeploymentStatus>(status));
  constexpr std::string_view kPrefix = "DEPLOYMENT_STATUS_";
  if (name.rfind(kPrefix, 0) == 0) name = name.substr(kPrefix.size());
  return name.empty() ? "UNKNOWN" : name;
}

std::string StepStatusName(int status) {
  switch (status) {
    case pb::STEP_STATUS_PENDING:
      return "pending";
    case pb::STEP_STATUS_RUNNING:
      return "running";
    case pb::STEP_STATUS_SUCCEEDED:
      return "succeeded";
    case pb::STEP_STATUS_FAILED:
      return "failed";
    default:
      return "unknown";
  }
}

std::string BuildStatusName(int status) {
  switch (status) {
    case pb::BUILD_STATUS_QUEUED:
      return "QUEUED";
    case pb::BUILD_STATUS_RUNNING:
      return "RUNNING";
    case pb::BUILD_STATUS_SUCCEEDED:
      return "SUCCEEDED";
    case pb::BUILD_STATUS_FAILED:
      return "FAILED";
    default:
      return "UNKNOWN";
  }
}

int64_t StepElapsedMs(const pb::DeploymentStep& step, int64_t now_ms) {
  if (step.started_at_ms() <= 0) return -1;
  int64_t end = step.finished_at_ms() > 0 ? step.finished_at_ms() : now_ms;
  return std::max<int64_t>(0, end - step.started_at_ms());
}

std::string FormatStep(const pb::DeploymentStep& step, int64_t now_ms) {
  std::string line = fmt::format("  {:<10} {:<9}", step.name(), StepStatusName(step.status()));
  int64_t elapsed = StepElapsedMs(step, now_ms);
  if (elapsed >= 0) line += fmt::format("  {:>6}", ElapsedText(elapsed));
  if (!step.error().empty()) line += "  " + step.error();
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

std::string FormatAge(int64_t then_ms, int64_t now_ms) {
  int64_t s = std::max<int64_t>(0, (now_ms - then_ms) / 1000);
  if (s < 60) return fmt::format("{}s ago", s);
  if (s < 3600) return fmt::format("{}m ago", s / 60);
  if (s < 86400) return fmt::format("{}h ago", s / 3600);
  return fmt::format("{}d ago", s / 86400);
}

std::vector<std::string> FormatDeployment(const pb::Deployment& d, int64_t now_ms) {
  std::vector<std::string> out;
  out.push_back(fmt::format("Deployment {}", d.id()));
  out.push_back(fmt::format("  project      {}", d.project()));
  out.push_back(fmt::format("  environment  {}", d.environment()));
  if (!d.branch().empty()) out.push_back(fmt::format("  branch       {}", d.branch()));
  if (!d.git().commit_sha().empty()) {
    out.push_back(fmt::format("  commit       {} {}", d.git().commit_sha().substr(0, 12),
                              d.git().commit_message()));
    if (!d.git().author().empty())
      out.push_back(fmt::format("  author       {}", d.git().author()));
  }
  out.push_back(fmt::format("  status       {}", DeploymentStatusName(d.status())));
  if (d.live_environments_size() > 0) {
    std::string live;
    for (const auto& e : d.live_environments()) live += (live.empty() ? "" : ", ") + e;
    out.push_back(fmt::format("  live in      {}", live));
  }
  if (d.stopped_at_ms() > 0) {
    out.push_back(fmt::format("  stopped      {} by the retention policy (slipway rollback --to {} "
                              "starts it again)",
                              FormatAge(d.stopped_at_ms(), now_ms), d.id()));
  }
  if (!d.image().empty()) out.push_back(fmt::format("  image        {}", d.image()));
  if (!d.build_id().empty()) out.push_back(fmt::format("  build        {}", d.build_id()));
  if (d.created_at_ms() > 0) {
    out.push_back(fmt::format("  created      {}", FormatAge(d.created_at_ms(), now_ms)));
  }
  if (d.steps_size() > 0) {
    out.push_back("Steps");
    for (const auto& step : d.steps()) out.push_back(FormatStep(step, now_ms));
  }
  if (d.instances_size() > 0) {
    out.push_back("Instances");
    for (const auto& in : d.instances()) {
      std::string line = fmt::format("  {}  {}", in.id(), in.status());
      if (!in.reason().empty()) line += "  " + in.reason();
      out.push_back(std::move(line));
    }
  }
  if (d.urls_size() > 0) {
    out.push_back("URLs");
    for (const auto& url : d.urls()) out.push_back("  " + url);
  }
  if (!d.error().empty()) {
    out.push_back(d.failed_step().empty()
                      ? fmt::format("Error: {}", d.error())
                      : fmt::format("Error (step {}): {}", d.failed_step(), d.error()));
  }
  return out;
}

std::vector<std::string> FormatDeploymentTable(const std::vector<const pb::Deployment*>& list,
                                               int64_t now_ms) {
  // Column widths from the content, so long project names do not break the alignment.
  size_t id_w = 2, project_w = 7, env_w = 11;
  for (const auto* d : list) {
    id_w = std::max(id_w, d->id().size());
    project_w = std::max(project_w, d->project().size());
    env_w = std::max(env_w, d->environment().size());
  }
  std::vector<std::string> out;
  auto row = [&](std::string_view id, std::string_view project, std::string_view env,
                 std::string_view status, std::string_view created, std::string_view url) {
    std::string line = fmt::format("{:<{}}  {:<{}}  {:<{}}  {:<9}  {:<8}  {}", id, id_w, project,
                                   project_w, env, env_w, status, created, url);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out.push_back(std::move(line));
  };
  row("ID", "PROJECT", "ENVIRONMENT", "STATUS", "CREATED", "URL");
  for (const auto* d : list) {
    // The most specific URL (the deployment's own host) is the last one.
    std::string url = d->urls_size() > 0 ? d->urls(d->urls_size() - 1) : "";
    std::string live;
    for (const auto& e : d->live_environments()) live += (live.empty() ? "" : ",") + e;
    if (!live.empty()) url += (url.empty() ? "" : "  ") + std::string("LIVE: ") + live;
    row(d->id(), d->project(), d->environment(), DeploymentStatusName(d->status()),
        d->created_at_ms() > 0 ? FormatAge(d->created_at_ms(), now_ms) : "", url);
  }
  return out;
}

nlohmann::json DeploymentJson(const pb::Deployment& d, int64_t now_ms) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : d.steps()) {
    nlohmann::json step = {{"name", s.name()},
                           {"status", StepStatusName(s.status())},
                           {"started_at_ms", s.started_at_ms()},
                           {"finished_at_ms", s.finished_at_ms()},
                           {"error", s.error()}};
    int64_t elapsed = StepElapsedMs(s, now_ms);
    step["elapsed_ms"] = elapsed >= 0 ? nlohmann::json(elapsed) : nlohmann::json(nullptr);
    steps.push_back(std::move(step));
  }
  nlohmann::json instances = nlohmann::json::array();
  for (const auto& in : d.instances()) {
    instances.push_back({{"id", in.id()}, {"status", in.status()}, {"reason", in.reason()}});
  }
  return {{"deployment_id", d.id()},
          {"project", d.project()},
          {"environment", d.environment()},
          {"branch", d.branch()},
          {"status", DeploymentStatusName(d.status())},
          {"urls", std::vector<std::string>(d.urls().begin(), d.urls().end())},
          {"error", d.error()},
          {"failed_step", d.failed_step()},
          {"image", d.image()},
          {"build_id", d.build_id()},
          {"git",
           {{"commit_sha", d.git().commit_sha()},
            {"commit_message", d.git().commit_message()},
            {"author", d.git().author()}}},
          {"steps", std::move(steps)},
          {"stopped_at_ms", d.stopped_at_ms()},
          {"instances", std::move(instances)},
          {"live_environments",
           std::vector<std::string>(d.live_environments().begin(), d.live_environments().end())},
          {"created_at_ms", d.created_at_ms()},
          {"updated_at_ms", d.updated_at_ms()}};
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace slipway::cli
