// The production shape of slipway as separate processes a fault test can kill and start again
// one by one, each on its own fixed port across restarts: the object store (`slipway run s3`),
// krane (`slipway run krane`, docker or kubernetes backend), one or two ctrl processes
// (`slipway run ctrl`) and the gateway (`slipway run gateway`), on SQLite files or on databases
// of a PostgreSQL cluster the test owns. And what every fault test checks at the end: the
// deployment is READY or FAILED, and nothing of it is left running or leaked.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>

#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/ctrl/deploy_fixture.h"
#include "db/database.h"
#include "db/migrations.h"
#include "support/postgres.h"
#include "support/test_support.h"

namespace slipway::faults {

namespace pb = slipway::ctrl::v1;
namespace dt = slipway::ctrl::deploy_test;
using namespace std::chrono_literals;

enum class Databases { kSqlite, kPostgres };
inline const char* DatabasesName(Databases d) {
  return d == Databases::kSqlite ? "sqlite" : "postgres";
}

class FaultStack {
 public:
  // postgres: the cluster the databases live on (the test's own), or null for SQLite files.
  explicit FaultStack(testing::PrivatePostgres* postgres) {
    for (int* port : {&s3_port_, &krane_port_, &gateway_port_, &ctrl_ports_[0], &ctrl_ports_[1]}) {
      *port = testing::FreePort();
    }
    if (postgres != nullptr) {
      main_db_ = postgres->NewDatabase();
      partition_db_ = postgres->NewDatabase();
    } else {
      main_db_ = (dir_.path() / "main.db").string();
      partition_db_ = (dir_.path() / "partition.db").string();
    }
  }
  ~FaultStack() {
    // ctrl first, so nothing creates containers while krane's are removed below.
    for (auto& c : ctrl_) c.reset();
    gateway_.reset();
    krane_.reset();
    s3_.reset();
  }

  // Every part, krane on dockerd at docker_host (the shared daemon unless a test has its own).
  void StartAll(const std::string& docker_host = "unix:///var/run/docker.sock") {
    StartS3();
    krane_env_ = {{"DOCKER_HOST", docker_host}};
    StartKrane();
    StartCtrl(0, /*issue_token=*/true);
    StartGateway();
  }

  // --- the parts -------------------------------------------------------------------------
  void StartS3() {
    s3_ = Start("s3", {"run", "s3", "--listen", Listen(s3_port_), "--data",
                       (dir_.path() / "s3").string(), "--access-key", dt::kS3Access,
                       "--secret-key", dt::kS3Secret},
                {}, s3_port_);
  }
  void KillS3() { Kill(s3_); }

  // krane's environment: DOCKER_HOST, or KRANE_BACKEND=kubernetes and its settings.
  void SetKraneEnv(std::map<std::string, std::string> env) { krane_env_ = std::move(env); }
  void StartKrane() {
    std::map<std::string, std::string> env = krane_env_;
    env["KRANE_TOKEN"] = dt::kKraneToken;
    krane_ = Start("krane", {"run", "krane", "--listen", Listen(krane_port_)}, env, krane_port_);
  }
  void KillKrane() { Kill(krane_); }

  // ctrl number i (0 or 1), both on the same databases, store and krane. The first start
  // issues the workspace's token.
  void StartCtrl(int i, bool issue_token = false) {
    std::vector<std::string> args = {"run", "ctrl", "--listen", Listen(ctrl_ports_[i]),
                                     "--database", main_db_, "--partition-database",
                                     partition_db_, "--s3-endpoint",
                                     "http://127.0.0.1:" + std::to_string(s3_port_),
                                     "--krane-url", "http://127.0.0.1:" + std::to_string(krane_port_),
                                     "--gateway-port", std::to_string(gateway_port_),
                                     "--wait-interval", "250ms", "--wait-deadline", wait_deadline_,
                                     "--workflow-lease", "2s", "--retention-interval", "0"};
    if (issue_token) args.insert(args.end(), {"--issue-token", "faults"});
    args.insert(args.end(), ctrl_extra_.begin(), ctrl_extra_.end());
    ctrl_[i] = Start("ctrl" + std::to_string(i), args,
                     {{"S3_ACCESS_KEY_ID", dt::kS3Access},
                      {"S3_SECRET_ACCESS_KEY", dt::kS3Secret},
                      {"KRANE_TOKEN", dt::kKraneToken}},
                     ctrl_ports_[i]);
    if (issue_token) token_ = IssuedToken(ctrl_log_[i]);
  }
  void KillCtrl(int i) { Kill(ctrl_[i]); }
  pid_t CtrlPid(int i) const { return ctrl_[i] ? ctrl_[i]->pid() : -1; }
  // More `slipway run ctrl` flags for the next starts; the wait deadline ("2m" by default).
  void SetCtrlExtra(std::vector<std::string> extra) { ctrl_extra_ = std::move(extra); }
  void SetWaitDeadline(std::string d) { wait_deadline_ = std::move(d); }

  void StartGateway() {
    gateway_ = Start("gateway", {"run", "gateway", "--admin-listen", "127.0.0.1:0", "--listen", Listen(gateway_port_),
                                 "--partition-database", partition_db_, "--refresh-interval",
                                 "100ms"},
                     {}, gateway_port_);
  }
  void KillGateway() { Kill(gateway_); }
  void StopGateway() {
    gateway_->Signal(SIGTERM);
    gateway_->Wait(20s);
    gateway_.reset();
  }

  // A client of ctrl number i with the workspace's token.
  dt::CtrlClient Client(int i = 0) const { return dt::CtrlClient(CtrlEndpoint(i), token_); }
  std::string CtrlEndpoint(int i = 0) const {
    return "http://127.0.0.1:" + std::to_string(ctrl_ports_[i]);
  }
  int gateway_port() const { return gateway_port_; }
  const std::string& main_db() const { return main_db_; }
  const std::string& partition_db() const { return partition_db_; }
  const testing::TempDir& dir() const { return dir_; }

  // Every log so far, for failure messages.
  std::string Logs() const {
    std::string out;
    for (const auto& [name, files] : logs_) {
      for (const auto& f : files) out += "--- " + f + ":\n" + testing::ReadFile(f) + "\n";
    }
    return out;
  }

 private:
  static std::string Listen(int port) { return "127.0.0.1:" + std::to_string(port); }

  std::unique_ptr<testing::Process> Start(const std::string& name, std::vector<std::string> args,
                                          const std::map<std::string, std::string>& env, int port) {
    auto& files = logs_[name];
    files.push_back((dir_.path() / (name + "-" + std::to_string(files.size() + 1) + ".log")).string());
    if (name.rfind("ctrl", 0) == 0) ctrl_log_[name.back() - '0'] = files.back();
    args.insert(args.begin(), testing::SlipwayBinary());
    auto p = std::make_unique<testing::Process>(args, env, files.back());
    EXPECT_TRUE(testing::WaitForPort(port, 30s))
        << name << " did not start:\n" << testing::ReadFile(files.back());
    return p;
  }

  // SIGKILL: the process gets no chance to finish anything, as in a crash.
  static void Kill(std::unique_ptr<testing::Process>& p) {
    if (!p) return;
    p->Signal(SIGKILL);
    p->Wait(10s);
    p.reset();
  }

  static std::string IssuedToken(const std::string& log) {
    for (int i = 0; i < 100; ++i) {
      std::istringstream lines(testing::ReadFile(log));
      for (std::string line; std::getline(lines, line);) {
        if (line.rfind("slw_", 0) == 0) return line;
      }
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "ctrl printed no token:\n" << testing::ReadFile(log);
    return "";
  }

  testing::TempDir dir_;
  int s3_port_ = 0, krane_port_ = 0, gateway_port_ = 0;
  std::array<int, 2> ctrl_ports_{};
  std::string main_db_, partition_db_;
  std::string wait_deadline_ = "2m";
  std::vector<std::string> ctrl_extra_;
  std::map<std::string, std::string> krane_env_;
  std::string token_;
  std::unique_ptr<testing::Process> s3_, krane_, gateway_;
  std::array<std::unique_ptr<testing::Process>, 2> ctrl_;
  std::array<std::string, 2> ctrl_log_;
  std::map<std::string, std::vector<std::string>> logs_;
};

// What is left of a deployment behind ctrl's API, read from the databases themselves.
struct Leftovers {
  int running_steps = 0;      // deployment_steps rows still 'running'
  int unfinished_builds = 0;  // builds rows neither succeeded nor failed
  int unfinished_runs = 0;    // its workflow runs still pending or running
  int running_instances = 0;  // partition instances rows RUNNING
  int instance_rows = 0;
  int routes = 0;             // gateway_routes rows pointing at it
};

inline int Count(db::Database& db, const std::string& sql, const std::string& id) {
  auto row = db.QueryRow(sql, {id});
  EXPECT_TRUE(row.ok()) << row.status().ToString();
  return row.ok() && *row ? static_cast<int>((**row)["n"].AsInt()) : -1;
}

inline Leftovers LeftoversOf(const FaultStack& stack, const std::string& id) {
  Leftovers l;
  auto main = db::Open(stack.main_db());
  EXPECT_TRUE(main.ok()) << main.status().ToString();
  auto partition = db::OpenPartition(stack.partition_db());
  EXPECT_TRUE(partition.ok()) << partition.status().ToString();
  if (!main.ok() || !partition.ok()) return l;
  l.running_steps = Count(**main,
                          "SELECT COUNT(*) AS n FROM deployment_steps WHERE deployment_id = $1 "
                          "AND status = 'running'",
                          id);
  l.unfinished_builds = Count(**main,
                              "SELECT COUNT(*) AS n FROM builds WHERE deployment_id = $1 AND "
                              "status NOT IN ('succeeded', 'failed')",
                              id);
  l.unfinished_runs = Count(**main,
                            "SELECT COUNT(*) AS n FROM workflow_runs WHERE input LIKE '%' || $1 || "
                            "'%' AND status IN ('pending', 'running')",
                            id);
  l.running_instances = Count(**partition,
                              "SELECT COUNT(*) AS n FROM instances WHERE deployment_id = $1 AND "
                              "status = 'RUNNING'",
                              id);
  l.instance_rows =
      Count(**partition, "SELECT COUNT(*) AS n FROM instances WHERE deployment_id = $1", id);
  l.routes =
      Count(**partition, "SELECT COUNT(*) AS n FROM gateway_routes WHERE deployment_id = $1", id);
  return l;
}

// The end every fault test checks, in the words of its assertion messages: a READY deployment
// has exactly `replicas` running instances (containers counted by `containers`), its routes,
// and nothing unfinished; a FAILED one names what failed (`reason_must_name`) and has no
// instance, container or route left. `outcome` is what the test expects and why.
inline void ExpectCleanEnd(const FaultStack& stack, const pb::Deployment& d, int replicas,
                           int containers, const std::string& why) {
  const std::string id = d.id();
  // The run records its own end just after it marks the deployment: give it a moment.
  Leftovers l = LeftoversOf(stack, id);
  for (int i = 0; i < 100 && l.unfinished_runs > 0; ++i) {
    std::this_thread::sleep_for(100ms);
    l = LeftoversOf(stack, id);
  }
  EXPECT_EQ(l.running_steps, 0) << why << ": a step row of " << id << " is left running";
  EXPECT_EQ(l.unfinished_builds, 0) << why << ": a build row of " << id << " is left unfinished";
  EXPECT_EQ(l.unfinished_runs, 0) << why << ": a workflow run of " << id << " is left unfinished";
  for (const auto& s : d.steps()) {
    EXPECT_NE(s.status(), pb::STEP_STATUS_RUNNING) << why << ": step " << s.name() << " still running";
  }
  if (d.status() == pb::DEPLOYMENT_STATUS_READY) {
    EXPECT_EQ(l.running_instances, replicas) << why << ": READY must mean exactly the replicas run";
    EXPECT_EQ(l.instance_rows, replicas) << why << ": an instance row was leaked or doubled";
    EXPECT_EQ(containers, replicas) << why << ": containers or pods of " << id << " doubled or missing";
    EXPECT_GT(l.routes, 0) << why << ": a READY deployment has its routes";
  } else {
    EXPECT_EQ(d.status(), pb::DEPLOYMENT_STATUS_FAILED) << why << ": neither READY nor FAILED";
    EXPECT_EQ(l.instance_rows, 0) << why << ": a FAILED deployment leaked instance rows";
    EXPECT_EQ(containers, 0) << why << ": a FAILED deployment leaked containers or pods";
    EXPECT_EQ(l.routes, 0) << why << ": a FAILED deployment leaked routes";
  }
}

}  // namespace slipway::faults
