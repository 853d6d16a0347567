// Load on one `slipway dev`, shared by the load test (which asserts that every deploy is READY
// and every poll answered) and bench/load_bench (which prints the figures): many concurrent
// `slipway deploy` processes of distinct projects, and many concurrent pollers of
// GetDeployment, each with its own connection, as that many users' CLIs would be.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "integration/e2e/dev_stack.h"
#include "net/connect.h"
#include "slipway/ctrl/v1/deployment.pb.h"

namespace slipway::testing {

// The resident set of a process, in KiB (VmRSS of /proc/<pid>/status); -1 if unreadable.
inline long RssKib(pid_t pid) {
  std::istringstream status(ReadFile("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

struct ConcurrentDeploys {
  std::vector<std::string> ids;     // of the deployments that reached READY
  std::vector<std::string> failures;  // one sentence per deploy that did not
  double seconds = 0;               // from the first start to the last end
};

// `slipway deploy` of n copies of examples/hello (projects <prefix>-0 ...), all started at once.
inline ConcurrentDeploys DeployConcurrently(DevStack& stack, const std::string& prefix, int n) {
  ConcurrentDeploys out;
  std::vector<fs::path> apps;
  for (int i = 0; i < n; ++i) {
    apps.push_back(HelloApp(stack.dir() / "load", prefix + "-" + std::to_string(i),
                            "load " + std::to_string(i)));
  }
  struct Running {
    std::unique_ptr<Process> process;
    fs::path log;
  };
  std::vector<Running> running;
  const auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    const fs::path log = stack.dir() / (prefix + "-" + std::to_string(i) + ".out");
    running.push_back({std::make_unique<Process>(
                           std::vector<std::string>{"/bin/sh", "-c",
                                                    SlipwayBinary() + " deploy " + apps[i].string() +
                                                        " --json 2>&1"},
                           stack.env(), log.string()),
                       log});
  }
  for (int i = 0; i < n; ++i) {
    const int code = running[i].process->Wait(std::chrono::minutes(10));
    const std::string text = ReadFile(running[i].log);
    std::string last;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line[0] == '{') last = line;
    }
    auto result = nlohmann::json::parse(last, nullptr, false);
    const std::string id = result.is_object() ? result.value("deployment_id", "") : "";
    if (!id.empty()) stack.Track(id);
    if (code == 0 && result.is_object() && result.value("status", "") == "READY") {
      out.ids.push_back(id);
    } else {
      out.failures.push_back("deploy " + std::to_string(i) + " exited " + std::to_string(code) +
                             ": " + text.substr(text.size() > 600 ? text.size() - 600 : 0));
    }
  }
  out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return out;
}

struct ConcurrentPolls {
  int answered = 0;
  std::vector<std::string> errors;  // the first few
  int error_count = 0;
  std::vector<double> latencies_ms;  // one per poll, sorted
  double seconds = 0;
};

// `pollers` threads, each with its own client (its own connection), all started before any
// polls, each asking GetDeployment `rounds` times about one of ids (round-robin), `pause`
// apart.
inline ConcurrentPolls PollConcurrently(const DevStack& stack, const std::vector<std::string>& ids,
                                        int pollers, int rounds,
                                        std::chrono::milliseconds pause) {
  ConcurrentPolls out;
  const auto creds = stack.credentials();
  std::mutex mu;
  std::atomic<int> waiting{pollers};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int p = 0; p < pollers; ++p) {
    threads.emplace_back([&, p] {
      net::ConnectClient::Options o;
      o.base_url = creds["control_plane"].get<std::string>();
      o.bearer_token = creds["token"].get<std::string>();
      o.timeout = std::chrono::seconds(60);
      net::ConnectClient client(o);
      ctrl::v1::GetDeploymentRequest req;
      req.set_deployment_id(ids[p % ids.size()]);
      --waiting;
      while (waiting > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      std::vector<double> mine;
      std::vector<std::string> errors;
      for (int r = 0; r < rounds; ++r) {
        const auto t0 = Clock::now();
        auto got = client.Call<ctrl::v1::GetDeploymentResponse>(
            net::ConnectProcedure("slipway.ctrl.v1.DeploymentService", "GetDeployment"), req);
        mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (!got.ok()) {
          errors.push_back(got.status().ToString());
        } else if (got->deployment().id() != req.deployment_id()) {
          errors.push_back("answered about " + got->deployment().id() + " instead of " +
                           req.deployment_id());
        }
        std::this_thread::sleep_for(pause);
      }
      std::lock_guard<std::mutex> lock(mu);
      out.latencies_ms.insert(out.latencies_ms.end(), mine.begin(), mine.end());
      out.answered += rounds - static_cast<int>(errors.size());
      out.error_count += static_cast<int>(errors.size());
      for (auto& e : errors) {
        if (out.errors.size() < 5) out.errors.push_back(std::move(e));
      }
    });
  }
  for (auto& t : threads) t.join();
  out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(out.latencies_ms.begin(), out.latencies_ms.end());
  return out;
}

inline double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(q * sorted.size()))];
}

}  // namespace slipway::testing
