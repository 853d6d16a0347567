// Apps that misbehave after they were deployed, on a whole `slipway dev` (real dockerd, the
// gateway, ctrl and krane as production runs them):
//  - an app that dies after READY: krane reports the instance FAILED with its exit code and last
//    log lines, ctrl records that on the instance and not on the deployment (still READY, its
//    steps and error as the deploy left them), the gateway routes nothing to it (503 "no ready
//    instance", not a refused connection), `slipway status` shows the instance and why, and once
//    dockerd's restart policy has it answering again it is RUNNING and routed again, saying it
//    was restarted and how its last run ended;
//  - an app that floods its log: it is READY and serves all the same, dockerd keeps at most
//    --krane-log-max-files files of --krane-log-max-size of its log (rotated, so the disk does
//    not fill), a GetLogs answer stops at its bound and says there is more, and ctrl stores none
//    of it.
// Each app is told when to misbehave (a file made with `docker exec`), so nothing here depends
// on how fast the machine is; every wait is for a state, bounded.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <thread>

#include "integration/e2e/dev_stack.h"
#include "support/test_support.h"

namespace slipway::testing {
namespace {

using Json = nlohmann::json;

// Two files of 2 MiB hold more text than one GetLogs answer carries (1 MiB).
constexpr uint64_t kLogMaxBytes = 2 << 20;
constexpr int kLogMaxFiles = 2;

// Asks pred every 200 ms until it holds or timeout passes; whether it held.
bool PollUntil(const std::function<bool()>& pred, std::chrono::seconds timeout) {
  const auto until = Clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Json Inspect(const std::string& container) {
  CommandResult r = RunCommand("/usr/bin/docker inspect " + container);
  Json j = Json::parse(r.output, nullptr, false);
  return j.is_array() && !j.empty() ? j[0] : Json();
}

void DockerExec(const std::string& container, const std::string& command) {
  CommandResult r = RunCommand("/usr/bin/docker exec " + container + " " + command);
  ASSERT_EQ(r.exit_code, 0) << "docker exec " << container << " " << command << ": " << r.output;
}

class AppBadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new DevStack({"--wait-interval", "250ms", "--krane-log-max-size",
                           std::to_string(kLogMaxBytes), "--krane-log-max-files",
                           std::to_string(kLogMaxFiles)});
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(stack_->ready()) << stack_->log(); }

  // An app on the example's base image, serving ./www (a page saying `name`), with that command.
  static fs::path App(const std::string& name, const std::string& command) {
    fs::path dir = stack_->dir() / name;
    fs::create_directories(dir / "www");
    std::ofstream(dir / "www" / "index.html") << "this is " << name << "\n";
    std::ofstream(dir / "Dockerfile") << "FROM slipway/busybox:1\nCOPY www /www\nCMD [\"/bin/sh\", \"-c\", \""
                                      << command << "\"]\n";
    return dir;
  }

  // `slipway status ID --json`.
  static Json Status(const std::string& id) {
    CommandResult r = RunCommand(SlipwayBinary() + " status " + id + " --json 2>/dev/null", stack_->env());
    return Json::parse(r.output, nullptr, false);
  }

  static std::string OwnUrl(const Json& deployed) {
    for (const auto& u : deployed["urls"]) {
      const std::string url = u;
      if (url.find("-production.") == std::string::npos) return url + "/";
    }
    return "";
  }

  static DevStack* stack_;
};
DevStack* AppBadInputTest::stack_ = nullptr;

TEST_F(AppBadInputTest, AppThatDiesAfterReadyIsFailedWithItsExitCodeUnroutedAndBackOnceRestarted) {
  // Serves until /tmp/die appears, then exits 7. Started again by dockerd, it waits for
  // /tmp/serve-again before it listens, so the test sees the instance down for as long as it
  // needs to look.
  fs::path app = App(
      "phoenix",
      "if [ -e /tmp/died ]; then echo restarted, waiting; while [ ! -e /tmp/serve-again ]; do "
      "sleep 0.1; done; fi; echo serving; /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www & "
      "while [ ! -e /tmp/die ]; do sleep 0.1; done; rm /tmp/die; touch /tmp/died; "
      "echo told to die >&2; exit 7");
  auto d = stack_->Deploy(app);
  ASSERT_EQ(d.result.value("status", ""), "READY") << d.output;
  const std::string id = d.result.value("deployment_id", "");
  const std::string url = OwnUrl(d.result);
  ASSERT_FALSE(url.empty()) << d.result.dump();
  EXPECT_EQ(Get(url).status, 200);
  const std::string container = id + "-0";
  const std::string container_id = Inspect(container).value("Id", "");
  ASSERT_FALSE(container_id.empty());

  DockerExec(container, "/bin/busybox touch /tmp/die");

  // krane's reason reaches the instance, through ctrl's monitor, as `slipway status` shows it.
  Json failed;
  ASSERT_TRUE(PollUntil(
      [&] {
        failed = Status(id);
        return failed.is_object() && failed["instances"].is_array() &&
               !failed["instances"].empty() && failed["instances"][0].value("status", "") == "FAILED";
      },
      std::chrono::seconds(60)))
      << "the instance never showed FAILED: " << failed.dump() << "\n" << stack_->log();
  const std::string reason = failed["instances"][0].value("reason", "");
  EXPECT_EQ(failed["instances"][0].value("id", ""), container);
  EXPECT_NE(reason.find("exit code 7"), std::string::npos) << reason;
  EXPECT_NE(reason.find("told to die"), std::string::npos) << "the last log lines: " << reason;
  // The deployment's record is as the deploy left it: deployed, and still the one serving.
  EXPECT_EQ(failed.value("status", ""), "READY") << failed.dump();
  EXPECT_EQ(failed.value("error", "x"), "") << failed.dump();
  EXPECT_EQ(failed.value("failed_step", "x"), "") << failed.dump();
  for (const auto& step : failed["steps"]) {
    EXPECT_EQ(step.value("status", ""), "succeeded") << step.dump();
  }
  CommandResult human = RunCommand(SlipwayBinary() + " status " + id + " 2>&1", stack_->env());
  EXPECT_NE(human.output.find("Instances"), std::string::npos) << human.output;
  EXPECT_NE(human.output.find(container + "  FAILED  exited with exit code 7"), std::string::npos)
      << human.output;

  // The gateway routes nothing to it: its own 503, never the refused connection's 502.
  Http down;
  ASSERT_TRUE(PollUntil([&] { return (down = Get(url)).status == 503; }, std::chrono::seconds(30)))
      << down.status << ": " << down.body;
  EXPECT_NE(down.body.find("has no ready instance"), std::string::npos) << down.body;
  for (int i = 0; i < 5; ++i) {
    Http again = Get(url);
    EXPECT_EQ(again.status, 503) << again.body;
  }

  // dockerd's restart policy started the same container again.
  Json restarted = Inspect(container);
  EXPECT_EQ(restarted.value("Id", ""), container_id);
  EXPECT_GE(restarted.value("RestartCount", 0), 1) << restarted.dump();
  EXPECT_EQ(restarted["HostConfig"]["RestartPolicy"].value("Name", ""), "unless-stopped");

  DockerExec(container, "/bin/busybox touch /tmp/serve-again");
  Http up;
  ASSERT_TRUE(PollUntil([&] { return (up = Get(url)).status == 200; }, std::chrono::seconds(60)))
      << up.status << ": " << up.body << "\n" << Status(id).dump();
  EXPECT_NE(up.body.find("this is phoenix"), std::string::npos) << up.body;
  Json back = Status(id);
  ASSERT_TRUE(back["instances"].is_array() && !back["instances"].empty()) << back.dump();
  EXPECT_EQ(back["instances"][0].value("status", ""), "RUNNING") << back.dump();
  const std::string note = back["instances"][0].value("reason", "");
  EXPECT_NE(note.find("restarted once"), std::string::npos) << note;
  EXPECT_NE(note.find("exit code 7"), std::string::npos) << note;
  EXPECT_EQ(back.value("status", ""), "READY");
}

TEST_F(AppBadInputTest, AppThatFloodsItsLogIsReadyServesAndItsLogIsBoundedOnDiskAndInAnswers) {
  // 200-byte lines as fast as it can, on a twentieth of a CPU (the flood, and dockerd reading
  // it, must not take the machine from the other tests).
  const std::string line(190, 'f');
  fs::path app = App("flood", "/bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www & exec "
                              "/bin/busybox yes flood-" + line);
  auto d = stack_->Deploy(app, "--cpu 50");
  ASSERT_EQ(d.result.value("status", ""), "READY") << d.output;
  const std::string id = d.result.value("deployment_id", "");
  const std::string container = id + "-0";
  const std::string url = OwnUrl(d.result);
  Http page = Get(url);
  EXPECT_EQ(page.status, 200) << page.body;
  EXPECT_NE(page.body.find("this is flood"), std::string::npos) << page.body;

  // krane asked dockerd for rotated json-file logs, whatever dockerd's own default.
  Json inspect = Inspect(container);
  const Json log_config = inspect["HostConfig"]["LogConfig"];
  EXPECT_EQ(log_config.value("Type", ""), "json-file") << log_config.dump();
  EXPECT_EQ(log_config["Config"].value("max-size", ""), std::to_string(kLogMaxBytes)) << log_config.dump();
  EXPECT_EQ(log_config["Config"].value("max-file", ""), std::to_string(kLogMaxFiles)) << log_config.dump();

  // The log rotates (the app wrote more than one file's worth) and never holds more than the
  // files allowed, each no larger than the size (json-file may pass it by the one line that
  // crossed it).
  const fs::path log_path = inspect.value("LogPath", "");
  ASSERT_FALSE(log_path.empty()) << inspect.dump();
  const fs::path rotated = log_path.string() + ".1";
  ASSERT_TRUE(PollUntil([&] { return fs::exists(rotated); }, std::chrono::seconds(120)))
      << "the log never rotated; " << log_path << " holds " << fs::file_size(log_path) << " bytes";
  uint64_t on_disk = 0;
  int files = 0;
  for (const auto& entry : fs::directory_iterator(log_path.parent_path())) {
    if (entry.path().filename().string().rfind(log_path.filename().string(), 0) != 0) continue;
    ++files;
    std::error_code ec;
    const uint64_t size = fs::file_size(entry.path(), ec);
    if (ec) continue;  // rotated away between listing and reading
    EXPECT_LE(size, kLogMaxBytes + 64 * 1024) << entry.path();
    on_disk += size;
  }
  EXPECT_LE(files, kLogMaxFiles);
  EXPECT_LE(on_disk, kLogMaxFiles * (kLogMaxBytes + 64 * 1024));
  std::cout << "log files on disk: " << files << ", " << on_disk << " bytes\n";

  // Still serving under the flood.
  EXPECT_EQ(Get(url).status, 200);

  // Everything dockerd kept (more than an answer's bound) is not one answer: GetLogs from the
  // start stops at 1 MiB of text and says there is more.
  auto creds = stack_->credentials();
  const fs::path answer_file = stack_->dir() / "flood-logs.json";
  CommandResult logs = RunCommand(
      "curl -s -o " + answer_file.string() + " -X POST -H 'Content-Type: application/json' " +
      "-H 'Authorization: Bearer " + creds["token"].get<std::string>() +
      "' -d '{\"deploymentId\":\"" + id + "\",\"afterNs\":\"1\"}' " +
      creds["control_plane"].get<std::string>() + "/slipway.ctrl.v1.DeploymentService/GetLogs");
  ASSERT_EQ(logs.exit_code, 0) << logs.output;
  Json answer = Json::parse(ReadFile(answer_file), nullptr, false);
  ASSERT_TRUE(answer.is_object() && answer["lines"].is_array()) << ReadFile(answer_file).substr(0, 500);
  uint64_t text_bytes = 0;
  for (const auto& l : answer["lines"]) text_bytes += l.value("text", "").size();
  EXPECT_TRUE(answer.value("more", false)) << answer["lines"].size() << " lines, " << text_bytes << " bytes";
  EXPECT_LE(text_bytes, 1u << 20);
  EXPECT_LE(answer["lines"].size(), 10000u);
  EXPECT_GT(text_bytes, 512u * 1024) << "an answer carries up to its bound";
  std::cout << "one GetLogs answer: " << answer["lines"].size() << " lines, " << text_bytes
            << " bytes of text, more: " << answer.value("more", false) << "\n";

  // The CLI's last lines come at once.
  CommandResult tail = RunCommand(SlipwayBinary() + " logs " + id + " --tail 3 2>&1", stack_->env());
  EXPECT_EQ(tail.exit_code, 0) << tail.output.substr(0, 500);
  EXPECT_NE(tail.output.find(container + " | flood-"), std::string::npos) << tail.output.substr(0, 500);

  // ctrl keeps no runtime log: its databases stay small whatever the app wrote.
  uint64_t db_bytes = 0;
  for (const auto& entry : fs::directory_iterator(stack_->dir() / "data")) {
    if (entry.is_regular_file() && entry.path().filename().string().find(".db") != std::string::npos) {
      db_bytes += entry.file_size();
    }
  }
  EXPECT_LT(db_bytes, 8u << 20) << "ctrl's databases hold " << db_bytes << " bytes";
  Json status = Status(id);
  ASSERT_TRUE(status["instances"].is_array() && !status["instances"].empty()) << status.dump();
  EXPECT_EQ(status["instances"][0].value("status", ""), "RUNNING");

  // Stop the flood now rather than at the end of the suite.
  RunCommand("/usr/bin/docker rm -f " + container + " >/dev/null 2>&1");
}

}  // namespace
}  // namespace slipway::testing
