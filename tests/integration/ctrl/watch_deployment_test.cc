// DeploymentService.WatchDeployment as a client written by others sees it: connect-es (npm
// @connectrpc/connect-node), with code generated at test time from proto/slipway/ctrl/v1, follows
// a deployment in the JSON and in the binary format at once, on SQLite and on PostgreSQL, with
// ctrl in-process, krane's docker backend on the real dockerd and the embedded S3 store.
//
// Shown here: the stream starts with the deployment as it is and brings its changes in commit
// order (statuses and steps only move forward, build log lines arrive once each, in sequence),
// and it ends right after READY, the last message carrying the URLs; a deployment that fails
// ends its stream with FAILED, the failing step and the error; an unknown id ends the stream
// with not_found.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <map>

#include "ctrl/ctrl_server.h"
#include "deploy_fixture.h"
#include "support/postgres.h"

namespace slipway::ctrl::deploy_test {
namespace {

namespace fs = std::filesystem;
using testing::TestDriver;

std::string Quote(const std::string& s) { return "'" + s + "'"; }

struct Watched {
  std::vector<pb::WatchDeploymentResponse> messages;
  std::string end;  // "end ok" or "end error code=..."
  std::string output;
};

// The lines a connect_watch_client.mjs run printed, parsed.
Watched ParseWatch(const std::string& output) {
  Watched w;
  w.output = output;
  size_t start = 0;
  for (size_t nl; (nl = output.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string line = output.substr(start, nl - start);
    if (line.rfind("message ", 0) == 0) {
      pb::WatchDeploymentResponse m;
      auto parsed = google::protobuf::util::JsonStringToMessage(line.substr(8), &m);
      EXPECT_TRUE(parsed.ok()) << line;
      w.messages.push_back(std::move(m));
    } else if (line.rfind("end ", 0) == 0) {
      w.end = line;
    }
  }
  return w;
}

int StatusRank(pb::DeploymentStatus s) {
  // The order a deployment moves through; FAILED and DELETED end it from anywhere.
  switch (s) {
    case pb::DEPLOYMENT_STATUS_PENDING:
      return 1;
    case pb::DEPLOYMENT_STATUS_BUILDING:
      return 2;
    case pb::DEPLOYMENT_STATUS_DEPLOYING:
      return 3;
    case pb::DEPLOYMENT_STATUS_NETWORK:
      return 4;
    default:
      return 5;
  }
}

bool IsFinal(pb::DeploymentStatus s) {
  return s == pb::DEPLOYMENT_STATUS_READY || s == pb::DEPLOYMENT_STATUS_FAILED ||
         s == pb::DEPLOYMENT_STATUS_DELETED;
}

// What holds for every watch: one deployment; statuses and each step's status only move
// forward; only the last message is final; log lines come once each, in sequence from 1.
void ExpectOrderedStream(const Watched& w, const std::string& id) {
  ASSERT_FALSE(w.messages.empty()) << w.output;
  int last_rank = 0;
  std::map<std::string, int> step_status;
  int64_t last_seq = 0;
  for (size_t i = 0; i < w.messages.size(); ++i) {
    const pb::Deployment& d = w.messages[i].deployment();
    EXPECT_EQ(d.id(), id);
    const int rank = StatusRank(d.status());
    EXPECT_GE(rank, last_rank) << "message " << i << " went back to "
                               << pb::DeploymentStatus_Name(d.status()) << "\n"
                               << w.output;
    last_rank = rank;
    EXPECT_EQ(IsFinal(d.status()), i + 1 == w.messages.size())
        << "message " << i << " of " << w.messages.size() << " is "
        << pb::DeploymentStatus_Name(d.status()) << "\n"
        << w.output;
    for (const auto& step : d.steps()) {
      int& seen = step_status[step.name()];
      EXPECT_GE(static_cast<int>(step.status()), seen)
          << "step " << step.name() << " went back in message " << i << "\n"
          << w.output;
      seen = step.status();
    }
    for (const auto& line : w.messages[i].build_log()) {
      EXPECT_EQ(line.seq(), last_seq + 1) << "log line out of sequence in message " << i;
      last_seq = line.seq();
    }
  }
}

class WatchDeploymentTest : public ::testing::TestWithParam<TestDriver> {
 protected:
  static void SetUpTestSuite() {
    auto ping = Docker("GET", "/_ping");
    ASSERT_TRUE(ping.ok()) << "dockerd does not answer on /var/run/docker.sock ("
                           << ping.status().ToString() << "); start it with scripts/services.sh";
    // The connect-es code for ctrl's API, generated from the protos as they are now.
    fs::path peers = testing::SourceDir() / "tests" / "peers";
    fs::path plugin = peers / "node_modules" / ".bin" / "protoc-gen-es";
    ASSERT_TRUE(fs::exists(plugin)) << plugin << " is missing; run scripts/setup.sh (npm ci in "
                                    << peers << ") to install the test peers.";
    gen_ = new testing::TempDir();
    fs::create_directory_symlink(peers / "node_modules", gen_->path() / "node_modules");
    const fs::path protos = testing::SourceDir() / "proto";
    std::string files;
    for (const char* name : {"build", "deployment"}) {
      files += " " + Quote((protos / "slipway/ctrl/v1" / (std::string(name) + ".proto")).string());
    }
    auto protoc = testing::RunCommand("protoc --plugin=protoc-gen-es=" + Quote(plugin.string()) +
                                      " --es_out=" + Quote(gen_->str()) +
                                      " --es_opt=target=js,import_extension=js -I " + Quote(protos.string()) + files);
    ASSERT_EQ(protoc.exit_code, 0) << protoc.output;
    krane_ = new InProcessKrane();
    krane_->Start();
  }

  static void TearDownTestSuite() {
    if (krane_ != nullptr) krane_->Stop();
    delete krane_;
    krane_ = nullptr;
    delete gen_;
  }

  void SetUp() override {
    s3_ = StartS3(dir_.path() / "s3");
    ASSERT_NE(s3_, nullptr);
    CtrlOptions o;
    o.listen = "127.0.0.1:0";
    o.database_url = testing::FreshDatabaseUrl(GetParam(), dir_.path());
    o.partition_database_url = testing::FreshDatabaseUrl(GetParam(), dir_.path());
    o.s3.endpoint = s3_->endpoint();
    o.s3.credentials.access_key = kS3Access;
    o.s3.credentials.secret_key = kS3Secret;
    o.krane_url = krane_->url();
    o.krane_token = kKraneToken;
    o.wait_interval = 250ms;
    auto server = CtrlServer::Start(o);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    ctrl_ = std::move(*server);
    auto token = ctrl_->IssueToken("watch-test");
    ASSERT_TRUE(token.ok()) << token.status().ToString();
    token_ = *token;
    client_ = std::make_unique<CtrlClient>(ctrl_->endpoint(), token_);
  }

  void TearDown() override {
    if (ctrl_) ctrl_->Shutdown();
    for (const auto& id : deployments_) RemoveContainersOf(id);
    if (s3_) s3_->Shutdown();
  }

  // Starts connect-es watching `id` in `format` ("json", "binary"), its output into a file.
  std::unique_ptr<testing::Process> StartWatch(const std::string& id, const std::string& format) {
    fs::path log = dir_.path() / ("watch-" + id + "-" + format + ".log");
    return std::make_unique<testing::Process>(
        std::vector<std::string>{
            "node", (testing::SourceDir() / "tests/peers/connect_watch_client.mjs").string(),
            ctrl_->endpoint(), gen_->str(), token_, id, format},
        std::map<std::string, std::string>{}, log.string());
  }

  Watched Finish(testing::Process& watch, const std::string& id, const std::string& format) {
    int code = watch.Wait(180s);
    std::string output = testing::ReadFile(dir_.path() / ("watch-" + id + "-" + format + ".log"));
    EXPECT_EQ(code, 0) << output;
    return ParseWatch(output);
  }

  static inline testing::TempDir* gen_ = nullptr;
  static inline InProcessKrane* krane_ = nullptr;

  testing::TempDir dir_;
  std::unique_ptr<storage::S3Server> s3_;
  std::unique_ptr<CtrlServer> ctrl_;
  std::string token_;
  std::unique_ptr<CtrlClient> client_;
  std::vector<std::string> deployments_;
};

TEST_P(WatchDeploymentTest, ConnectEsSeesEveryChangeInOrderUntilReadyInJsonAndBinary) {
  const std::string project = "watch-" + std::to_string(::getpid());
  const std::string key =
      UploadSiteContext(*client_, project, "watched " + RandomHex(4), dir_.path());
  ASSERT_FALSE(key.empty());
  const std::string id = DeployContext(*client_, project, key);
  ASSERT_FALSE(id.empty());
  deployments_.push_back(id);
  auto json = StartWatch(id, "json");
  auto binary = StartWatch(id, "binary");

  pb::GetDeploymentResponse full;
  for (auto [watch, format] : {std::pair{json.get(), "json"}, std::pair{binary.get(), "binary"}}) {
    Watched w = Finish(*watch, id, format);
    SCOPED_TRACE(format);
    EXPECT_EQ(w.end, "end ok") << w.output;
    ExpectOrderedStream(w, id);
    ASSERT_FALSE(w.messages.empty());
    const pb::Deployment& last = w.messages.back().deployment();
    ASSERT_EQ(last.status(), pb::DEPLOYMENT_STATUS_READY) << last.error() << "\n" << w.output;
    // When the watch began before READY, the changes that followed came as messages of their
    // own (the watcher may also start after READY on a loaded machine: one message then).
    if (!IsFinal(w.messages.front().deployment().status())) {
      EXPECT_GE(w.messages.size(), 2u) << w.output;
    }

    // What the stream brought is what GetDeployment says at the end: the URLs, every step
    // succeeded, and the whole build log, line by line.
    if (full.deployment().id().empty()) {
      pb::GetDeploymentRequest req;
      req.set_deployment_id(id);
      auto answer = client_->connect().Call<pb::GetDeploymentResponse>(
          net::ConnectProcedure(kDeploymentService, "GetDeployment"), req);
      ASSERT_TRUE(answer.ok()) << answer.status().ToString();
      full = *answer;
    }
    ASSERT_GT(full.deployment().urls_size(), 0);
    EXPECT_EQ(
        std::vector<std::string>(last.urls().begin(), last.urls().end()),
        std::vector<std::string>(full.deployment().urls().begin(), full.deployment().urls().end()));
    for (const auto& step : last.steps()) {
      EXPECT_EQ(step.status(), pb::STEP_STATUS_SUCCEEDED) << step.name();
      EXPECT_GT(step.finished_at_ms(), 0) << step.name();
    }
    std::vector<std::string> streamed_log;
    for (const auto& m : w.messages) {
      for (const auto& line : m.build_log()) streamed_log.push_back(line.text());
    }
    std::vector<std::string> whole_log;
    for (const auto& line : full.build_log()) whole_log.push_back(line.text());
    EXPECT_FALSE(whole_log.empty());
    EXPECT_EQ(streamed_log, whole_log);
  }
}

TEST_P(WatchDeploymentTest, AFailedDeploymentsStreamEndsWithItsError) {
  const std::string project = "watch-fail-" + std::to_string(::getpid());
  auto id = client_->DeployImage(project, "slipway-test/never-pushed:" + RunTag(), 1);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  deployments_.push_back(*id);
  auto json = StartWatch(*id, "json");
  auto binary = StartWatch(*id, "binary");
  for (auto [watch, format] : {std::pair{json.get(), "json"}, std::pair{binary.get(), "binary"}}) {
    Watched w = Finish(*watch, *id, format);
    SCOPED_TRACE(format);
    EXPECT_EQ(w.end, "end ok") << w.output;
    ExpectOrderedStream(w, *id);
    ASSERT_FALSE(w.messages.empty());
    const pb::Deployment& last = w.messages.back().deployment();
    EXPECT_EQ(last.status(), pb::DEPLOYMENT_STATUS_FAILED) << w.output;
    EXPECT_EQ(last.failed_step(), "schedule") << w.output;
    EXPECT_NE(last.error().find("never-pushed"), std::string::npos) << last.error();
  }

  // curl, as the README shows it: the envelopes as they came, the last one the end of the
  // stream (flag 0x02, "{}": no error).
  auto curl = testing::RunCommand(
      "printf '\\0\\0\\0\\0\\047{\"deploymentId\":\"" + *id +
      "\"}' | curl -sN --data-binary @- -H 'Authorization: Bearer " + token_ +
      "' -H 'Content-Type: application/connect+json' " + ctrl_->endpoint() +
      "/slipway.ctrl.v1.DeploymentService/WatchDeployment | od -An -v -tx1 | tr -d ' \\n'");
  ASSERT_EQ(curl.exit_code, 0) << curl.output;
  const std::string hex = curl.output;
  EXPECT_EQ(hex.rfind("00", 0), 0u) << hex;                       // a message first
  EXPECT_NE(hex.find("4641494c4544"), std::string::npos) << hex;  // "FAILED"
  EXPECT_EQ(hex.size() >= 14 ? hex.substr(hex.size() - 14) : hex, "02000000027b7d") << hex;

  // An id that is not one of this workspace's: the stream ends at once with not_found.
  auto unknown = StartWatch("dep_0000000000000000", "json");
  Watched w = Finish(*unknown, "dep_0000000000000000", "json");
  EXPECT_TRUE(w.messages.empty()) << w.output;
  EXPECT_EQ(w.end.rfind("end error code=NotFound", 0), 0u) << w.output;
}

INSTANTIATE_TEST_SUITE_P(Drivers, WatchDeploymentTest,
                         ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) {
                           return std::string(testing::TestDriverName(info.param));
                         });

}  // namespace
}  // namespace slipway::ctrl::deploy_test
