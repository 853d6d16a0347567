// `slipway deploy` against a scripted control plane (a real Connect server on loopback that
// plays a deployment's life): the path to READY that the integration tests cannot reach
// without krane, the build log cursor, step lines with times, URLs, --json, and a control plane
// that goes away for a moment.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "net/connect.h"
#include "net/http_server.h"
#include "slipway/ctrl/v1/deployment.pb.h"

namespace slipway::cli {
namespace {

namespace pb = slipway::ctrl::v1;

constexpr char kToken[] = "scripted-token";

// A console writing into memory; human and result streams apart.
class Captured {
 public:
  Captured() : human_(open_memstream(&hbuf_, &hsize_)), result_(open_memstream(&rbuf_, &rsize_)) {}
  ~Captured() {
    std::fclose(human_);
    std::fclose(result_);
    std::free(hbuf_);
    std::free(rbuf_);
  }
  // Errors go with the human output, as a terminal shows them.
  Console console() { return Console(human_, result_, false, human_); }
  std::string human() {
    std::fflush(human_);
    return std::string(hbuf_, hsize_);
  }
  std::string result() {
    std::fflush(result_);
    return std::string(rbuf_, rsize_);
  }

 private:
  char* hbuf_ = nullptr;
  size_t hsize_ = 0;
  char* rbuf_ = nullptr;
  size_t rsize_ = 0;
  std::FILE* human_;
  std::FILE* result_;
};

pb::DeploymentStep* Step(pb::Deployment* d, const std::string& name, pb::StepStatus status,
                         int64_t started, int64_t finished) {
  auto* s = d->add_steps();
  s->set_name(name);
  s->set_status(status);
  s->set_started_at_ms(started);
  s->set_finished_at_ms(finished);
  return s;
}

// Plays: building (two log lines) -> deploying -> unavailable once -> READY with URLs.
class ScriptedCtrl {
 public:
  ScriptedCtrl() {
    router_.SetAuthorizer([](net::CallContext& ctx) {
      if (ctx.bearer_token() != kToken) return Status::Unauthenticated("bad token");
      return Status::Ok();
    });
    router_.Unary<pb::CreateDeploymentRequest, pb::CreateDeploymentResponse>(
        net::ConnectProcedure("slipway.ctrl.v1.DeploymentService", "CreateDeployment"),
        [this](net::CallContext&, const pb::CreateDeploymentRequest& req,
               pb::CreateDeploymentResponse* resp) {
          std::lock_guard lock(mu_);
          created_ = req;
          resp->set_deployment_id("dep_scripted1");
          return Status::Ok();
        });
    router_.Unary<pb::GetDeploymentRequest, pb::GetDeploymentResponse>(
        net::ConnectProcedure("slipway.ctrl.v1.DeploymentService", "GetDeployment"),
        [this](net::CallContext&, const pb::GetDeploymentRequest& req,
               pb::GetDeploymentResponse* resp) { return Get(req, resp); });
    auto server = net::HttpServer::Start({}, router_.AsHandler());
    EXPECT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(*server);
  }

  std::string endpoint() const { return "http://" + server_->address(); }
  pb::CreateDeploymentRequest created() {
    std::lock_guard lock(mu_);
    return created_;
  }
  std::vector<int64_t> log_afters() {
    std::lock_guard lock(mu_);
    return log_afters_;
  }

 private:
  Status Get(const pb::GetDeploymentRequest& req, pb::GetDeploymentResponse* resp) {
    std::lock_guard lock(mu_);
    int call = calls_++;
    log_afters_.push_back(req.log_after());
    if (call == 2) return Status::Unavailable("restarting");
    pb::Deployment* d = resp->mutable_deployment();
    d->set_id(req.deployment_id());
    d->set_project("hello");
    d->set_environment("production");
    auto log = [&](int64_t seq, const std::string& text) {
      if (seq <= req.log_after()) return;
      auto* l = resp->add_build_log();
      l->set_seq(seq);
      l->set_text(text);
    };
    switch (call) {
      case 0:
        d->set_status(pb::DEPLOYMENT_STATUS_BUILDING);
        Step(d, "build", pb::STEP_STATUS_RUNNING, 1'000, 0);
        Step(d, "schedule", pb::STEP_STATUS_PENDING, 0, 0);
        log(1, "Step 1/2 : FROM scratch\n");
        log(2, "Step 2/2 : COPY . /app\n");
        break;
      case 1:
        d->set_status(pb::DEPLOYMENT_STATUS_DEPLOYING);
        Step(d, "build", pb::STEP_STATUS_SUCCEEDED, 1'000, 4'500);
        Step(d, "schedule", pb::STEP_STATUS_RUNNING, 4'600, 0);
        log(1, "Step 1/2 : FROM scratch\n");
        log(2, "Step 2/2 : COPY . /app\n");
        log(3, "Successfully built 0123abcd\n");
        break;
      default:
        d->set_status(pb::DEPLOYMENT_STATUS_READY);
        Step(d, "build", pb::STEP_STATUS_SUCCEEDED, 1'000, 4'500);
        Step(d, "schedule", pb::STEP_STATUS_SUCCEEDED, 4'600, 4'800);
        d->add_urls("http://hello-production.localhost:8080");
        d->add_urls("http://hello-scripted1.localhost:8080");
        break;
    }
    return Status::Ok();
  }

  net::ConnectRouter router_;
  std::unique_ptr<net::HttpServer> server_;
  std::mutex mu_;
  int calls_ = 0;
  pb::CreateDeploymentRequest created_;
  std::vector<int64_t> log_afters_;
};

DeployCommandOptions Options(const ScriptedCtrl& ctrl) {
  DeployCommandOptions o;
  o.dir = ".";
  o.image = "registry.example/hello:1";
  o.project.project = "hello";
  o.project.replicas = 2;
  o.project.env = {"GREETING=hi"};
  o.common.connection = {ctrl.endpoint(), kToken};
  o.common.poll_interval = std::chrono::milliseconds(10);
  return o;
}

TEST(DeployCommandTest, FollowsTheDeploymentToReadyAndPrintsItsUrls) {
  ScriptedCtrl ctrl;
  Captured out;
  Console console = out.console();
  int code = RunDeployCommand(Options(ctrl), console);
  std::string text = out.human();
  EXPECT_EQ(code, 0) << text;

  pb::CreateDeploymentRequest req = ctrl.created();
  EXPECT_EQ(req.project(), "hello");
  EXPECT_EQ(req.image(), "registry.example/hello:1");
  EXPECT_EQ(req.resources().replicas(), 2);
  EXPECT_EQ(req.resources().env().at("GREETING"), "hi");

  // Every log line once, in order, under the build step; each step's time.
  EXPECT_NE(text.find("  build      started\n    Step 1/2 : FROM scratch\n    Step 2/2 : COPY . "
                      "/app\n    Successfully built 0123abcd\n  build      succeeded    3.5s\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  schedule   started\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  schedule   succeeded    0.2s\n"), std::string::npos) << text;
  EXPECT_NE(text.find("Lost the control plane for now"), std::string::npos) << text;
  EXPECT_NE(text.find("Deployment dep_scripted1 is ready"), std::string::npos) << text;
  EXPECT_NE(text.find("  http://hello-production.localhost:8080\n  "
                      "http://hello-scripted1.localhost:8080\n"),
            std::string::npos)
      << text;
  // The cursor moved past the lines already shown.
  auto afters = ctrl.log_afters();
  ASSERT_GE(afters.size(), 4u);
  EXPECT_EQ(afters[0], 0);
  EXPECT_EQ(afters[1], 2);
  EXPECT_EQ(afters.back(), 3);
  EXPECT_TRUE(out.result().empty());  // no --json, nothing on the result stream
}

TEST(DeployCommandTest, JsonCarriesStatusAndUrls) {
  ScriptedCtrl ctrl;
  Captured out;
  Console console = out.console();
  DeployCommandOptions o = Options(ctrl);
  o.common.json = true;
  ASSERT_EQ(RunDeployCommand(o, console), 0) << out.human();
  auto doc = nlohmann::json::parse(out.result(), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << out.result();
  EXPECT_EQ(doc["deployment_id"], "dep_scripted1");
  EXPECT_EQ(doc["status"], "READY");
  EXPECT_EQ(doc["urls"], nlohmann::json({"http://hello-production.localhost:8080",
                                         "http://hello-scripted1.localhost:8080"}));
  EXPECT_EQ(doc["error"], "");
  EXPECT_EQ(doc["failed_step"], "");
}

TEST(DeployCommandTest, RefusedTokenSaysSo) {
  ScriptedCtrl ctrl;
  Captured out;
  Console console = out.console();
  DeployCommandOptions o = Options(ctrl);
  o.common.connection.token = "wrong";
  o.common.json = true;
  EXPECT_EQ(RunDeployCommand(o, console), 1);
  auto doc = nlohmann::json::parse(out.result(), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << out.result();
  EXPECT_EQ(doc["status"], "ERROR");
  EXPECT_NE(doc["error"].get<std::string>().find("refused the API token from --token"),
            std::string::npos)
      << doc.dump();
}

}  // namespace
}  // namespace slipway::cli
