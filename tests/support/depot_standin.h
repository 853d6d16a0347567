// The Depot stand-in (tests/peers/depot-standin, Node) as a child process on a loopback port of
// 7500-7599, and what the tests read from it: its record of projects, builds and calls.
#pragma once

#include <sys/socket.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "support/buildkit_peer.h"
#include "support/test_support.h"

namespace slipway::testing {

class DepotStandIn {
 public:
  static constexpr const char* kToken = "depot-org-token-for-tests";

  DepotStandIn() {
    const std::filesystem::path peers = SourceDir() / "tests/peers";
    for (int p = 7500 + static_cast<int>(::getpid() % 50); p < 7600 && !ready_; p += 7) {
      if (WaitForPort(p, std::chrono::milliseconds(50))) continue;  // taken
      port_ = p;
      process_ = std::make_unique<Process>(
          std::vector<std::string>{"node", (peers / "depot-standin/server.mjs").string()},
          std::map<std::string, std::string>{
              {"DEPOT_STANDIN_PORT", std::to_string(p)},
              {"DEPOT_STANDIN_TOKEN", kToken},
              {"DEPOT_STANDIN_BUILDKIT", Buildkit().tls_host},
              {"DEPOT_STANDIN_BUILDKIT_TLS",
               EnvOr("BUILDKITD_STATE", "/var/lib/slipway-buildkit") + "/tls"}},
          log_.string());
      // Ours, not another test process's that took the port a moment earlier.
      ready_ = WaitForPort(p, std::chrono::seconds(15)) &&
               State().value("pid", 0) == static_cast<int>(process_->pid());
      if (!ready_) process_.reset();
    }
  }
  ~DepotStandIn() {
    if (process_) {
      process_->Signal(SIGTERM);
      process_->Wait(std::chrono::seconds(5));
    }
  }

  bool ready() const { return ready_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return ReadFile(log_); }

  nlohmann::json State() const {
    CommandResult r = RunCommand("curl -s " + url() + "/stand-in/state");
    return nlohmann::json::parse(r.output, nullptr, false);
  }
  // {"token": ..., "machine_pending_ms": ..., "health_timeout_ms": ...}
  void Set(const nlohmann::json& settings) const {
    RunCommand("curl -s -X POST -d '" + settings.dump() + "' " + url() + "/stand-in/settings");
  }

  // The Depot projects of that name in its record.
  std::vector<nlohmann::json> ProjectsNamed(const std::string& name) const {
    std::vector<nlohmann::json> out;
    const nlohmann::json state = State();
    for (const auto& p : state["projects"]) {
      if (p.value("name", "") == name) out.push_back(p);
    }
    return out;
  }
  // The builds registered in a Depot project, in the order they were registered.
  std::vector<nlohmann::json> BuildsOf(const std::string& depot_project_id) const {
    std::vector<nlohmann::json> out;
    const nlohmann::json state = State();
    for (const auto& b : state["builds"]) {
      if (b.value("project_id", "") == depot_project_id) out.push_back(b);
    }
    return out;
  }

 private:
  TempDir dir_;
  std::filesystem::path log_ = dir_.path() / "depot-standin.log";
  int port_ = 0;
  bool ready_ = false;
  std::unique_ptr<Process> process_;
};

}  // namespace slipway::testing
