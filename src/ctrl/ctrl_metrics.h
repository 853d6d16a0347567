// What ctrl counts beyond its RPCs (net::ConnectRouter::SetMetrics): how long deployment steps
// and builds take and how they end. Thread-safe; lives as long as the registry it writes to.
#pragma once

#include <string_view>

#include "base/metrics.h"
#include "base/status.h"

namespace slipway::ctrl {

class CtrlMetrics {
 public:
  explicit CtrlMetrics(metrics::Registry& registry);

  // A deployment step that ran in this process (a step replayed from the journal did not):
  // slipway_deploy_step_duration_seconds{step,outcome}, outcome "ok", "failed" or "canceled"
  // (ctrl stopping; the step runs again when the deployment resumes).
  void StepFinished(std::string_view step, const Status& result, double seconds);

  // One build through a backend: slipway_build_duration_seconds{backend,outcome}, outcome
  // "succeeded", "failed", "reused" (an unchanged source: no build), "canceled" or "retried"
  // (the builder could not be reached; the step tries again).
  void BuildFinished(std::string_view backend, std::string_view outcome, double seconds);

 private:
  metrics::HistogramFamily& steps_;
  metrics::HistogramFamily& builds_;
};

}  // namespace slipway::ctrl
