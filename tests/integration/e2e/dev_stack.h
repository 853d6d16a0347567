// A whole `slipway dev` stack as a child process, and how the end-to-end tests talk to it: the
// CLI's `slipway deploy --json`, curl through the gateway, ctrl's API with the dev token.
// Containers of every deployment a stack deployed are removed when it is destroyed.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.h"

namespace slipway::testing {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// One `slipway dev` for the whole suite: starting the stack is the slow part, and every test
// below is a separate project on it, as separate users' projects would be.
class DevStack {
 public:
  // extra: more `slipway dev` flags ("--build-backend", "buildkit", ...).
  explicit DevStack(std::vector<std::string> extra = {}) : extra_(std::move(extra)) {
    gateway_port_ = FreePort();
    ctrl_port_ = FreePort();
    s3_port_ = FreePort();
    krane_port_ = FreePort();
    env_ = {{"XDG_CONFIG_HOME", (dir_.path() / "config").string()},
            {"XDG_DATA_HOME", (dir_.path() / "data").string()}};
    log_ = (dir_.path() / "dev.log").string();
    Start();
  }
  ~DevStack() {
    if (process_) {
      process_->Signal(SIGTERM);
      process_->Wait(std::chrono::seconds(20));
    }
    // The apps outlive the stack (as they should in production); the test removes its own.
    for (const std::string& id : deployments_) {
      RunCommand("/usr/bin/docker ps -aq --filter label=slipway.deployment=" + id +
                 " | xargs -r /usr/bin/docker rm -f >/dev/null");
    }
  }

  // Starts the stack (again, after Kill) on the same data directory and ports.
  void Start() {
    std::vector<std::string> args{SlipwayBinary(), "dev", "--data", (dir_.path() / "data").string(),
                                  "--s3-listen", "127.0.0.1:" + std::to_string(s3_port_),
                                  "--krane-listen", "127.0.0.1:" + std::to_string(krane_port_),
                                  "--listen", "127.0.0.1:" + std::to_string(ctrl_port_),
                                  "--gateway-listen", "127.0.0.1:" + std::to_string(gateway_port_),
                                  "--gateway-admin-listen", "127.0.0.1:0"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    process_ = std::make_unique<Process>(args, env_, log_);
    ready_ = WaitForPort(gateway_port_, std::chrono::seconds(60)) &&
             WaitForFile(dir_.path() / "config/slipway/dev.json");
  }
  // SIGKILL: no shutdown of any part, as when the machine loses power.
  void Kill() {
    process_->Signal(SIGKILL);
    process_->Wait(std::chrono::seconds(20));
    process_.reset();
    ready_ = false;
  }
  // SIGKILL, then start again on the same data with other extra flags.
  void Restart(std::vector<std::string> extra) {
    Kill();
    extra_ = std::move(extra);
    Start();
  }
  // Remembers a deployment the stack should remove the containers of at the end.
  void Track(const std::string& deployment_id) { deployments_.push_back(deployment_id); }

  bool ready() const { return ready_; }
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  std::string log() const { return ReadFile(log_); }
  const std::map<std::string, std::string>& env() const { return env_; }
  int gateway_port() const { return gateway_port_; }
  fs::path dir() const { return dir_.path(); }
  nlohmann::json credentials() const {
    return nlohmann::json::parse(ReadFile(dir_.path() / "config/slipway/dev.json"));
  }

  // `slipway deploy DIR --json`: the parsed result and the human output (stderr).
  struct Deployed {
    int exit_code = -1;
    nlohmann::json result;
    std::string output;
    double seconds = 0;
  };
  Deployed Deploy(const fs::path& app, const std::string& extra = "") {
    auto start = Clock::now();
    CommandResult r = RunCommand(SlipwayBinary() + " deploy " + app.string() +
                                     " --poll-interval 250ms --json " + extra +
                                     " 2>" + (dir_.path() / "deploy.err").string(),
                                 env_);
    Deployed d;
    d.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    d.exit_code = r.exit_code;
    d.output = ReadFile(dir_.path() / "deploy.err") + r.output;
    // The JSON result is the last line of stdout.
    std::string last;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line[0] == '{') last = line;
    }
    d.result = nlohmann::json::parse(last, nullptr, false);
    if (d.result.is_object()) deployments_.push_back(d.result.value("deployment_id", ""));
    return d;
  }

 private:
  static bool WaitForFile(const fs::path& path) {
    for (int i = 0; i < 200; ++i) {
      if (fs::exists(path)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::vector<std::string> extra_;
  TempDir dir_;
  int gateway_port_ = 0;
  int ctrl_port_ = 0;
  int s3_port_ = 0;
  int krane_port_ = 0;
  std::map<std::string, std::string> env_;
  std::string log_;
  std::unique_ptr<Process> process_;
  bool ready_ = false;
  std::vector<std::string> deployments_;
};

struct Http {
  int status = 0;
  std::string body;
};

// GET through curl, as a user would: *.localhost resolves to loopback in curl itself.
inline Http Get(const std::string& url) {
  CommandResult r = RunCommand("curl -s -m 10 -w '\\n%{http_code}' '" + url + "'");
  Http h;
  size_t nl = r.output.rfind('\n');
  if (nl == std::string::npos) return h;
  h.body = r.output.substr(0, nl);
  h.status = std::atoi(r.output.c_str() + nl + 1);
  return h;
}

// Expects the deploy READY and every one of its URLs answering 200, one of them with `marker`
// in its page.
inline void ExpectReadyAndAnswering(const DevStack::Deployed& d, const std::string& marker) {
  ASSERT_EQ(d.result.value("status", ""), "READY") << d.output;
  bool answered = false;
  for (const auto& url : d.result["urls"]) {
    Http h = Get(url.get<std::string>());
    EXPECT_EQ(h.status, 200) << url;
    answered = answered || h.body.find(marker) != std::string::npos;
  }
  EXPECT_TRUE(answered) << "no URL answered with \"" << marker << "\": " << d.result.dump();
}

// ctrl's own view of a deployment (Connect JSON), for what the CLI does not print.
inline nlohmann::json GetDeployment(const DevStack& stack, const std::string& id) {
  auto creds = stack.credentials();
  CommandResult r = RunCommand(
      "curl -s -X POST -H 'Content-Type: application/json' -H 'Authorization: Bearer " +
      creds["token"].get<std::string>() + "' -d '{\"deploymentId\":\"" + id + "\"}' " +
      creds["control_plane"].get<std::string>() +
      "/slipway.ctrl.v1.DeploymentService/GetDeployment");
  return nlohmann::json::parse(r.output, nullptr, false);
}

// How long a step of the deployment took, in milliseconds (-1 when it has no times).
inline int64_t StepMillis(const nlohmann::json& deployment, const std::string& step) {
  for (const auto& s : deployment["deployment"]["steps"]) {
    if (s.value("name", "") != step) continue;
    // int64 fields arrive as JSON strings in the Connect/protobuf JSON mapping.
    auto ms = [&](const char* k) {
      const auto& v = s[k];
      return v.is_string() ? std::stoll(v.get<std::string>()) : v.get<int64_t>();
    };
    if (!s.contains("startedAtMs") || !s.contains("finishedAtMs")) return -1;
    return ms("finishedAtMs") - ms("startedAtMs");
  }
  return -1;
}

// dockerd's inspection of each container of the deployment (label slipway.deployment), read
// through the docker CLI; empty when there are none.
inline std::vector<nlohmann::json> InspectContainersOf(const std::string& deployment_id) {
  CommandResult r = RunCommand("/usr/bin/docker ps -aq --no-trunc --filter label=slipway.deployment=" +
                               deployment_id + " | xargs -r /usr/bin/docker inspect");
  nlohmann::json list = nlohmann::json::parse(r.output, nullptr, false);
  if (!list.is_array()) return {};
  return list.get<std::vector<nlohmann::json>>();
}

inline int ContainersOf(const std::string& deployment_id) {
  CommandResult r = RunCommand(
      "/usr/bin/docker ps -aq --filter label=slipway.deployment=" + deployment_id + " | wc -l");
  return std::atoi(r.output.c_str());
}

// A copy of examples/hello under `name`, its page saying `greeting`.
inline fs::path HelloApp(const fs::path& root, const std::string& name, const std::string& greeting) {
  fs::path dir = root / name;
  fs::remove_all(dir);
  fs::create_directories(root);
  fs::copy(SourceDir() / "examples/hello", dir, fs::copy_options::recursive);
  std::ofstream(dir / "www/index.html") << "<p>" << greeting << "</p>\n";
  fs::remove(dir / "slipway.toml");
  return dir;
}

// An app whose Dockerfile runs `command` on the example's base image.
inline fs::path BrokenApp(const fs::path& root, const std::string& name, const std::string& command) {
  fs::path dir = root / name;
  fs::create_directories(dir);
  std::ofstream(dir / "Dockerfile") << "FROM slipway/busybox:1\nCMD [\"/bin/sh\", \"-c\", \""
                                    << command << "\"]\n";
  return dir;
}


// Starts `slipway deploy app` in the background, waits until its output shows `marker` (a
// build step that has started), then SIGKILLs the whole stack and the CLI, as a power loss
// would. Returns the deployment's id; empty (with a test failure) when the marker never came.
inline std::string DeployAndKillWhenLogged(DevStack& stack, const fs::path& app,
                                           const std::string& marker) {
  const fs::path log = stack.dir() / (app.filename().string() + "-killed-deploy.log");
  Process deploy({SlipwayBinary(), "deploy", app.string(), "--json", "--poll-interval", "250ms"},
                 stack.env(), log.string());
  std::string id;
  bool seen = false;
  for (int i = 0; i < 300 && !seen; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::string text = ReadFile(log);
    size_t p = text.find("dep_");
    if (id.empty() && p != std::string::npos) id = text.substr(p, 20);
    seen = text.find(marker) != std::string::npos;
  }
  EXPECT_TRUE(seen) << "the deploy never logged \"" << marker << "\":\n" << ReadFile(log);
  EXPECT_EQ(id.size(), 20u) << ReadFile(log);
  stack.Kill();
  deploy.Signal(SIGKILL);
  deploy.Wait();
  if (!seen || id.size() != 20) return "";
  stack.Track(id);
  return id;
}

// Asks ctrl until the deployment is READY or FAILED (or two minutes pass); its status name.
inline std::string WaitForFinalStatus(const DevStack& stack, const std::string& id) {
  std::string status;
  for (int i = 0;
       i < 600 && status != "DEPLOYMENT_STATUS_READY" && status != "DEPLOYMENT_STATUS_FAILED";
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    nlohmann::json j = GetDeployment(stack, id);
    if (j.is_object() && j.contains("deployment")) status = j["deployment"].value("status", "");
  }
  return status;
}

}  // namespace slipway::testing
