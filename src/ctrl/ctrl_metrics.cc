#include "ctrl/ctrl_metrics.h"

namespace slipway::ctrl {

CtrlMetrics::CtrlMetrics(metrics::Registry& registry)
    : steps_(registry.AddHistogram("slipway_deploy_step_duration_seconds",
                                   "Time a deployment step took in this process, retries "
                                   "included, by step and outcome",
                                   {"step", "outcome"}, metrics::LongTaskBuckets())),
      builds_(registry.AddHistogram("slipway_build_duration_seconds",
                                    "Time an image build took, by build backend and outcome; "
                                    "_count counts builds",
                                    {"backend", "outcome"}, metrics::LongTaskBuckets())) {}

void CtrlMetrics::StepFinished(std::string_view step, const Status& result, double seconds) {
  std::string_view outcome = result.ok()                         ? "ok"
                             : result.code() == Code::kCanceled ? "canceled"
                                                                 : "failed";
  steps_.With({step, outcome}).Observe(seconds);
}

void CtrlMetrics::BuildFinished(std::string_view backend, std::string_view outcome,
                                double seconds) {
  builds_.With({backend, outcome}).Observe(seconds);
}

}  // namespace slipway::ctrl
