// The crash sweep: ctrl SIGKILLed once in each of a series of deployments, each kill aimed at
// another step (build, schedule, wait, openapi, route) and at moments into it; after each kill ctrl starts again on the same databases. Every deployment must
// end READY with exactly its replicas: a crash is never a reason to fail a deployment or to
// create an instance twice. Shared by the docker backend's sweep and the kubernetes one.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "integration/faults/fault_stack.h"

namespace slipway::faults {

struct SweepOptions {
  int kills = 15;
  // Kill k aims at steps[k % steps.size()]: ctrl is killed once that step is seen started (or
  // any later one, when it was too quick to be seen), (k / steps.size()) * offset later, so the
  // kills fall at the start of each step and later into it. "created" aims at the moment the
  // create returned.
  std::vector<std::string> steps = {"created", "build", "schedule", "wait", "openapi", "route"};
  std::chrono::milliseconds offset{40};
  int replicas = 1;
  // Creates deployment k (with ctrl's client); returns its id.
  std::function<std::string(dt::CtrlClient&, int k)> deploy;
  // The instances of a deployment that run, as the engine underneath counts them.
  std::function<int(const std::string& id)> running_instances;
};

// The step that was running (or the last one finished) when a deployment was last seen.
inline std::string CurrentStep(const pb::Deployment& d) {
  std::string step = "created";
  for (const auto& s : d.steps()) {
    if (s.status() == pb::STEP_STATUS_RUNNING) return s.name();
    if (s.status() == pb::STEP_STATUS_SUCCEEDED) step = "after " + s.name();
  }
  if (d.status() == pb::DEPLOYMENT_STATUS_READY) return "READY";
  return step;
}

// Whether the deployment has started `step` or any step after it.
inline bool Reached(const pb::Deployment& d, const std::string& step) {
  if (step == "created") return true;
  bool at_or_after = false;
  for (const auto& s : d.steps()) {
    at_or_after = at_or_after || s.name() == step;
    if (at_or_after && s.status() != pb::STEP_STATUS_PENDING &&
        s.status() != pb::STEP_STATUS_UNSPECIFIED) {
      return true;
    }
  }
  return d.status() == pb::DEPLOYMENT_STATUS_READY || d.status() == pb::DEPLOYMENT_STATUS_FAILED;
}

// Runs the sweep on a started stack; returns how many kills fell on each step (as last seen
// before the kill).
inline std::map<std::string, int> RunCrashSweep(FaultStack& stack, const SweepOptions& o) {
  std::map<std::string, int> kills_at;
  for (int k = 0; k < o.kills; ++k) {
    auto client = stack.Client();
    const std::string id = o.deploy(client, k);
    if (id.empty()) {
      ADD_FAILURE() << "deployment " << k << " was not created" << stack.Logs();
      return kills_at;
    }
    const std::string& target = o.steps[k % o.steps.size()];
    const auto delay = static_cast<int>(k / o.steps.size()) * o.offset;
    pb::Deployment seen;
    for (auto until = std::chrono::steady_clock::now() + 60s;
         std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(5ms)) {
      auto got = client.Get(id);
      if (got.ok()) seen = *got;
      if (got.ok() && Reached(seen, target)) break;
    }
    std::this_thread::sleep_for(delay);
    if (auto got = client.Get(id); got.ok()) seen = *got;
    const std::string step = CurrentStep(seen);
    stack.KillCtrl(0);
    ++kills_at[step];
    stack.StartCtrl(0);
    pb::Deployment d = stack.Client().WaitForFinal(id, 120s);
    const std::string why = "kill " + std::to_string(k + 1) + " of " + std::to_string(o.kills) +
                            ", aimed at " + target + " + " + std::to_string(delay.count()) +
                            " ms, fell on " + step + ": a crash must end READY";
    EXPECT_EQ(d.status(), pb::DEPLOYMENT_STATUS_READY)
        << why << ", got " << pb::DeploymentStatus_Name(d.status()) << " at \"" << d.failed_step()
        << "\": " << d.error() << stack.Logs();
    ExpectCleanEnd(stack, d, o.replicas, o.running_instances(id), why);
  }
  return kills_at;
}

inline std::string SweepReport(const std::map<std::string, int>& kills_at) {
  std::string out;
  for (const auto& [step, n] : kills_at) out += step + ": " + std::to_string(n) + " kills; ";
  return out;
}

}  // namespace slipway::faults
