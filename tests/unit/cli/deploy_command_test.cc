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

// How the scripted control plane answers WatchDeployment.
enum class StreamMode {
  kAbsent,         // no such procedure: an older ctrl (404, unimplemented)
  kUnimplemented,  // the procedure answers the stream with unimplemented at once
  kStreams,        // streams the whole script, then ends
  kBreaks,         // streams the first phase, then fails as a ctrl that went away
};

// Plays: building (two log lines) -> deploying -> unavailable once -> READY with URLs, through
// GetDeployment polls (one phase per call) or the WatchDeployment stream.
class ScriptedCtrl {
 public:
  explicit ScriptedCtrl(StreamMode mode = StreamMode::kAbsent) {
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
    if (mode != StreamMode::kAbsent) {
      router_.ServerStreaming<pb::WatchDeploymentRequest, pb::WatchDeploymentResponse>(
          net::ConnectProcedure("slipway.ctrl.v1.DeploymentService", "WatchDeployment"),
          [this, mode](net::CallContext&, const pb::WatchDeploymentRequest& req,
                       net::StreamWriter<pb::WatchDeploymentResponse>& out) -> Status {
            {
              std::lock_guard lock(mu_);
              ++watches_;
            }
            if (mode == StreamMode::kUnimplemented) {
              return Status::Unimplemented("this control plane does not stream");
            }
            int64_t log_after = req.log_after();
            for (int phase : {0, 1, 3}) {
              pb::WatchDeploymentResponse m;
              Play(phase, req.deployment_id(), log_after, m.mutable_deployment(),
                   m.mutable_build_log());
              for (const auto& l : m.build_log()) log_after = l.seq();
              SLIPWAY_RETURN_IF_ERROR(out.Send(m));
              if (mode == StreamMode::kBreaks) return Status::Unavailable("ctrl is restarting");
            }
            return Status::Ok();
          });
    }
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
  int watches() {
    std::lock_guard lock(mu_);
    return watches_;
  }

 private:
  // Phase 2 is the control plane away for a moment (polls only).
  static void Play(int phase, const std::string& id, int64_t log_after, pb::Deployment* d,
                   google::protobuf::RepeatedPtrField<pb::LogLine>* build_log) {
    d->set_id(id);
    d->set_project("hello");
    d->set_environment("production");
    auto log = [&](int64_t seq, const std::string& text) {
      if (seq <= log_after) return;
      auto* l = build_log->Add();
      l->set_seq(seq);
      l->set_text(text);
    };
    switch (phase) {
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
  }

  Status Get(const pb::GetDeploymentRequest& req, pb::GetDeploymentResponse* resp) {
    std::lock_guard lock(mu_);
    int call = calls_++;
    log_afters_.push_back(req.log_after());
    if (call == 2) return Status::Unavailable("restarting");
    Play(call, req.deployment_id(), req.log_after(), resp->mutable_deployment(),
         resp->mutable_build_log());
    return Status::Ok();
  }

  net::ConnectRouter router_;
  std::unique_ptr<net::HttpServer> server_;
  std::mutex mu_;
  int calls_ = 0;
  int watches_ = 0;
  pb::CreateDeploymentRequest created_;
  std::vector<int64_t> log_afters_;
};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

constexpr char kFallbackLine[] = "No progress stream from the control plane (";

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
  // An older control plane without the stream: said once, then polled.
  EXPECT_EQ(Count(text, kFallbackLine), 1u) << text;
}

TEST(DeployCommandTest, FollowsTheStreamWithoutPolling) {
  ScriptedCtrl ctrl(StreamMode::kStreams);
  Captured out;
  Console console = out.console();
  int code = RunDeployCommand(Options(ctrl), console);
  std::string text = out.human();
  EXPECT_EQ(code, 0) << text;
  EXPECT_EQ(ctrl.watches(), 1);
  EXPECT_TRUE(ctrl.log_afters().empty()) << "GetDeployment was polled although the stream worked";
  EXPECT_EQ(Count(text, kFallbackLine), 0u) << text;
  EXPECT_NE(text.find("  build      started\n    Step 1/2 : FROM scratch\n    Step 2/2 : COPY . "
                      "/app\n    Successfully built 0123abcd\n  build      succeeded    3.5s\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  schedule   succeeded    0.2s\n"), std::string::npos) << text;
  EXPECT_NE(text.find("Deployment dep_scripted1 is ready"), std::string::npos) << text;
}

TEST(DeployCommandTest, FallsBackToPollingWhenTheStreamAnswersUnimplemented) {
  ScriptedCtrl ctrl(StreamMode::kUnimplemented);
  Captured out;
  Console console = out.console();
  int code = RunDeployCommand(Options(ctrl), console);
  std::string text = out.human();
  EXPECT_EQ(code, 0) << text;
  EXPECT_EQ(ctrl.watches(), 1);
  // One line says so, with the control plane's reason and the poll interval.
  EXPECT_EQ(Count(text, kFallbackLine), 1u) << text;
  EXPECT_NE(text.find("this control plane does not stream); asking every 10ms instead"),
            std::string::npos)
      << text;
  EXPECT_GE(ctrl.log_afters().size(), 4u);  // polled to the end
  EXPECT_NE(text.find("Deployment dep_scripted1 is ready"), std::string::npos) << text;
  EXPECT_NE(text.find("  http://hello-production.localhost:8080\n"), std::string::npos) << text;
}

TEST(DeployCommandTest, AStreamThatBreaksIsContinuedByPollingWithoutRepeatingLines) {
  ScriptedCtrl ctrl(StreamMode::kBreaks);
  Captured out;
  Console console = out.console();
  int code = RunDeployCommand(Options(ctrl), console);
  std::string text = out.human();
  EXPECT_EQ(code, 0) << text;
  EXPECT_EQ(Count(text, kFallbackLine), 1u) << text;
  EXPECT_NE(text.find("ctrl is restarting"), std::string::npos) << text;
  // The lines the stream showed are not shown again; polling starts after them.
  EXPECT_EQ(Count(text, "Step 1/2 : FROM scratch"), 1u) << text;
  EXPECT_EQ(Count(text, "  build      started"), 1u) << text;
  EXPECT_EQ(Count(text, "Successfully built 0123abcd"), 1u) << text;
  auto afters = ctrl.log_afters();
  ASSERT_FALSE(afters.empty());
  EXPECT_EQ(afters[0], 2);
  EXPECT_NE(text.find("Deployment dep_scripted1 is ready"), std::string::npos) << text;
}

TEST(DeployCommandTest, StatusFollowShowsTheStreamThenTheDeployment) {
  ScriptedCtrl ctrl(StreamMode::kStreams);
  Captured out;
  Console console = out.console();
  StatusCommandOptions o;
  o.deployment_id = "dep_scripted1";
  o.follow = true;
  o.common.connection = {ctrl.endpoint(), kToken};
  o.common.json = true;
  EXPECT_EQ(RunStatusCommand(o, console), 0) << out.human();
  EXPECT_NE(out.human().find("  schedule   started\n"), std::string::npos) << out.human();
  auto doc = nlohmann::json::parse(out.result(), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << out.result();
  EXPECT_EQ(doc["status"], "READY");
  EXPECT_EQ(ctrl.watches(), 1);
  EXPECT_TRUE(ctrl.log_afters().empty());
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
