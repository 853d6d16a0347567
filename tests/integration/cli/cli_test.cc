// Acceptance tests of the user-facing CLI: the real `slipway` binary as a child process against
// real `slipway run s3` and `slipway run ctrl` processes, builds on the real dockerd
// (BUILD_BACKEND=docker). Contexts are FROM scratch with /bin/busybox copied in.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "storage/s3_client.h"
#include "support/test_support.h"

namespace slipway::cli {
namespace {

namespace fs = std::filesystem;
using testing::RunCommand;
using testing::TempDir;

constexpr char kAccessKey[] = "SLIPWAYCLITESTKEY";
constexpr char kSecretKey[] = "slipway-cli-test-secret-0123456789";
constexpr char kBucket[] = "slipway";
constexpr char kDocker[] = "/usr/bin/docker";

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

void WriteText(const fs::path& path, std::string_view text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
  std::string all() const { return out + err; }
};

// One object store, one control plane (no krane) and a fresh token, all child processes.
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists("/bin/busybox")) << "busybox-static is needed (scripts/setup.sh)";
    auto ping = RunCommand(std::string(kDocker) + " version --format '{{.Server.Version}}'");
    ASSERT_EQ(ping.exit_code, 0) << "dockerd does not answer: " << ping.output;

    project_ = "cli-it-" + std::to_string(::getpid()) + "-" + std::to_string(++counter_);
    s3_port_ = testing::FreePort();
    std::vector<std::string> s3_argv = {testing::SlipwayBinary(),
                                        "run",
                                        "s3",
                                        "--listen",
                                        "127.0.0.1:" + std::to_string(s3_port_),
                                        "--data",
                                        (root_.path() / "s3").string()};
    if (!S3MaxObjectSize().empty()) {
      s3_argv.push_back("--max-object-size");
      s3_argv.push_back(S3MaxObjectSize());
    }
    s3_ = std::make_unique<testing::Process>(
        s3_argv,
        std::map<std::string, std::string>{{"S3_ACCESS_KEY_ID", kAccessKey},
                                           {"S3_SECRET_ACCESS_KEY", kSecretKey}},
        (root_.path() / "s3.log").string());
    ASSERT_TRUE(testing::WaitForPort(s3_port_)) << testing::ReadFile(root_.path() / "s3.log");

    ctrl_port_ = testing::FreePort();
    StartCtrl();

    storage::S3ClientOptions so;
    so.endpoint = S3Endpoint();
    so.credentials.access_key = kAccessKey;
    so.credentials.secret_key = kSecretKey;
    s3_client_ = std::make_unique<storage::S3Client>(so);
    // An empty config home: no dev.json of the machine's own `slipway dev` leaks in.
    fs::create_directories(root_.path() / "config");
  }

  void TearDown() override {
    // The images this test's builds made are tagged <project>:<id>; remove those tags only.
    RunCommand(std::string(kDocker) + " images " + Quote(project_) +
               " --format '{{.Repository}}:{{.Tag}}' | xargs -r " + kDocker + " rmi -f --no-prune");
    if (ctrl_) ctrl_->Signal(SIGTERM), ctrl_->Wait(std::chrono::seconds(10));
    if (s3_) s3_->Signal(SIGTERM), s3_->Wait(std::chrono::seconds(10));
  }

  // The object store's size limit; empty for its default.
  virtual std::string S3MaxObjectSize() const { return ""; }

  // `slipway run ctrl --issue-token`: the token is the first line of its stdout, which goes to
  // its own file so logs (stderr) cannot come before it.
  void StartCtrl() {
    fs::path token_file = root_.path() / "ctrl.out";
    fs::path log = root_.path() / "ctrl.log";
    std::string cmd = "exec " + Quote(testing::SlipwayBinary()) +
                      " run ctrl --listen 127.0.0.1:" + std::to_string(ctrl_port_) +
                      " --database " + Quote((root_.path() / "main.db").string()) +
                      " --s3-endpoint " + S3Endpoint() + " --s3-access-key " + kAccessKey +
                      " --s3-secret-key " + kSecretKey + " --bucket " + kBucket +
                      " --build-backend docker --issue-token cli-test >" +
                      Quote(token_file.string()) + " 2>" + Quote(log.string());
    ctrl_ = std::make_unique<testing::Process>(std::vector<std::string>{"/bin/sh", "-c", cmd});
    ASSERT_TRUE(testing::WaitForPort(ctrl_port_, std::chrono::seconds(30)))
        << testing::ReadFile(log);
    // ctrl listens before it issues the token: wait for the whole first line.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    std::string out;
    while ((out = testing::ReadFile(token_file)).find('\n') == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    token_ = out.substr(0, out.find('\n'));
    ASSERT_FALSE(token_.empty()) << testing::ReadFile(log);
  }

  std::string S3Endpoint() const { return "http://127.0.0.1:" + std::to_string(s3_port_); }
  std::string CtrlEndpoint() const { return "http://127.0.0.1:" + std::to_string(ctrl_port_); }

  // Runs the slipway CLI with args (already quoted where needed); the environment has no
  // SLIPWAY_* settings and an empty config home unless `env` says otherwise.
  CliResult Cli(const std::string& args, const std::map<std::string, std::string>& env = {}) {
    CliResult r;
    r.exit_code = RunCommand("(" + CliCommand(args, env) + ")").exit_code;
    r.out = testing::ReadFile(root_.path() / "cli.out");
    r.err = testing::ReadFile(root_.path() / "cli.err");
    return r;
  }

  // The shell command line of Cli(): stdout to cli.out, stderr to cli.err under the test's root.
  std::string CliCommand(const std::string& args,
                         const std::map<std::string, std::string>& env = {}) {
    std::map<std::string, std::string> vars = {
        {"XDG_CONFIG_HOME", (root_.path() / "config").string()}};
    for (const auto& [k, v] : env) vars[k] = v;
    std::string cmd = "env -u SLIPWAY_TOKEN -u SLIPWAY_CONTROL_PLANE";
    for (const auto& [k, v] : vars) cmd += " " + k + "=" + Quote(v);
    return cmd + " " + Quote(testing::SlipwayBinary()) + " " + args + " >" +
           Quote((root_.path() / "cli.out").string()) + " 2>" +
           Quote((root_.path() / "cli.err").string());
  }

  // The connection flags of this test's control plane.
  std::string Auth() const { return "--control-plane " + CtrlEndpoint() + " --token " + token_; }

  std::vector<storage::ObjectInfo> Objects() {
    auto list = s3_client_->ListObjectsV2(kBucket);
    EXPECT_TRUE(list.ok()) << list.status().message();
    return list.ok() ? list->objects : std::vector<storage::ObjectInfo>{};
  }

  // The names of the entries of the (one) uploaded context archive.
  std::string UploadedEntries(const storage::ObjectInfo& object) {
    fs::path file = root_.path() / "fetched.tar.gz";
    auto got = s3_client_->GetObject(kBucket, object.key, file.string());
    EXPECT_TRUE(got.ok()) << got.status().message();
    auto list = RunCommand("tar -tzf " + Quote(file.string()));
    EXPECT_EQ(list.exit_code, 0) << list.output;
    return list.output;
  }

  // A FROM scratch app: busybox, a Dockerfile that copies the context to /app and says
  // something in a RUN step.
  fs::path MakeApp(const std::string& name, const std::string& marker = "hello-from-run") {
    fs::path dir = root_.path() / name;
    fs::create_directories(dir);
    fs::copy_file("/bin/busybox", dir / "busybox");
    WriteText(dir / "Dockerfile",
              "FROM scratch\nCOPY busybox /bin/busybox\nCOPY . /app\nRUN [\"/bin/busybox\", "
              "\"echo\", \"" +
                  marker + "\"]\n");
    WriteText(dir / "site/index.html", "<h1>hello</h1>\n");
    return dir;
  }

  static std::string ImageFrom(const std::string& text) {
    std::smatch m;
    std::regex built("Built (\\S+) in ");
    return std::regex_search(text, m, built) ? m[1].str() : "";
  }

  TempDir root_;
  std::string project_;
  int s3_port_ = 0;
  int ctrl_port_ = 0;
  std::string token_;
  std::unique_ptr<testing::Process> s3_;
  std::unique_ptr<testing::Process> ctrl_;
  std::unique_ptr<storage::S3Client> s3_client_;
  static inline int counter_ = 0;
};

TEST_F(CliTest, BuildLeavesIgnoredFilesOutOfTheUploadAndTheImage) {
  fs::path app = MakeApp("app");
  testing::WriteRandomFile(app / "data/big.bin", 50ull << 20, 3);
  WriteText(app / "secret.env", "API_KEY=do-not-ship\n");
  WriteText(app / ".dockerignore", "# local only\ndata/big.bin\nsecret.env\n");

  CliResult r = Cli("build " + Quote(app.string()) + " --project " + project_ + " " + Auth());
  ASSERT_EQ(r.exit_code, 0) << r.all();
  std::string image = ImageFrom(r.out);
  ASSERT_FALSE(image.empty()) << r.all();
  EXPECT_EQ(image.rfind(project_ + ":", 0), 0u) << image;
  EXPECT_NE(r.out.find("hello-from-run"), std::string::npos) << "the build log was not shown:\n"
                                                             << r.all();
  EXPECT_NE(r.out.find("Uploaded "), std::string::npos) << r.all();

  // The store holds one context, without the ignored files.
  auto objects = Objects();
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_LT(objects[0].size, 10ull << 20);
  std::string entries = UploadedEntries(objects[0]);
  EXPECT_NE(entries.find("site/index.html"), std::string::npos) << entries;
  EXPECT_NE(entries.find("Dockerfile"), std::string::npos) << entries;
  EXPECT_EQ(entries.find("big.bin"), std::string::npos) << entries;
  EXPECT_EQ(entries.find("secret.env"), std::string::npos) << entries;

  // And neither is in the image.
  auto ls = RunCommand(std::string(kDocker) + " run --rm --network none " + Quote(image) +
                       " /bin/busybox find /app");
  ASSERT_EQ(ls.exit_code, 0) << ls.output;
  EXPECT_NE(ls.output.find("/app/site/index.html"), std::string::npos) << ls.output;
  EXPECT_EQ(ls.output.find("big.bin"), std::string::npos) << ls.output;
  EXPECT_EQ(ls.output.find("secret.env"), std::string::npos) << ls.output;
}

TEST_F(CliTest, SlipwayTomlNamesContextDockerfileAndBuildArgsAndFlagsWin) {
  fs::path dir = root_.path() / "monorepo";
  fs::path service = dir / "service";
  fs::create_directories(service);
  fs::copy_file("/bin/busybox", service / "busybox");
  WriteText(service / "docker/Dockerfile",
            "FROM scratch\nARG VERSION\nARG FLAVOR\nCOPY busybox /bin/busybox\n"
            "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo version=$VERSION flavor=$FLAVOR\"]\n");
  WriteText(dir / "README.md", "outside the context\n");
  WriteText(dir / "slipway.toml", "project = \"" + project_ +
                                      "\"\n[build]\ncontext = \"service\"\ndockerfile = "
                                      "\"docker/Dockerfile\"\nargs = { VERSION = \"1.0\", FLAVOR = "
                                      "\"plain\" }\n");
  CliResult r = Cli("build " + Quote(dir.string()) + " --build-arg VERSION=2.0 " + Auth());
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("version=2.0 flavor=plain"), std::string::npos) << r.all();
  EXPECT_EQ(ImageFrom(r.out).rfind(project_ + ":", 0), 0u) << r.out;
  auto objects = Objects();
  ASSERT_EQ(objects.size(), 1u);
  std::string entries = UploadedEntries(objects[0]);
  EXPECT_NE(entries.find("docker/Dockerfile"), std::string::npos) << entries;
  EXPECT_EQ(entries.find("README.md"), std::string::npos) << entries;  // only the context went
}

TEST_F(CliTest, BuildJsonGoesAloneToStdout) {
  fs::path app = MakeApp("jsonapp");
  CliResult r =
      Cli("build " + Quote(app.string()) + " --json --project " + project_ + " " + Auth());
  ASSERT_EQ(r.exit_code, 0) << r.all();
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << "stdout is not one JSON object:\n" << r.out;
  EXPECT_EQ(doc["status"], "SUCCEEDED");
  EXPECT_EQ(doc["error"], "");
  EXPECT_EQ(doc["build_id"].get<std::string>().rfind("bld", 0), 0u) << doc.dump();
  EXPECT_EQ(doc["image"].get<std::string>().rfind(project_ + ":", 0), 0u) << doc.dump();
  // Human output went to stderr.
  EXPECT_NE(r.err.find("hello-from-run"), std::string::npos) << r.err;
}

TEST_F(CliTest, BrokenDockerfileFailsWithTheBuildersMessage) {
  fs::path app = MakeApp("broken");
  WriteText(app / "Dockerfile", "FROM scratch\nNOTANINSTRUCTION foo\n");
  CliResult r =
      Cli("build " + Quote(app.string()) + " --json --project " + project_ + " " + Auth());
  EXPECT_NE(r.exit_code, 0) << r.all();
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.out;
  EXPECT_EQ(doc["status"], "FAILED");
  std::string error = doc["error"];
  std::transform(error.begin(), error.end(), error.begin(), ::tolower);
  EXPECT_NE(error.find("unknown instruction"), std::string::npos) << doc.dump();
  EXPECT_NE(r.err.find("failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(doc["error"].get<std::string>()), std::string::npos) << r.err;
}

TEST_F(CliTest, MissingDockerfileIsRefusedBeforeAnyUpload) {
  fs::path app = root_.path() / "nodockerfile";
  WriteText(app / "api/main.go", "package main\n");
  CliResult r = Cli("build " + Quote(app.string()) + " --project " + project_ + " " + Auth());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no Dockerfile at \"Dockerfile\" in " + fs::canonical(app).string() +
                       " (use --dockerfile"),
            std::string::npos)
      << r.all();

  // Named in slipway.toml; and the refusal comes before any network call: an unreachable
  // control plane is not even tried.
  WriteText(app / "slipway.toml", "[build]\ndockerfile = \"api/Dockerfile\"\n");
  r = Cli("deploy " + Quote(app.string()) + " --project " + project_ +
          " --control-plane http://127.0.0.1:" + std::to_string(testing::FreePort()) +
          " --token x");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no Dockerfile at \"api/Dockerfile\""), std::string::npos) << r.all();
  EXPECT_EQ(r.err.find("cannot reach"), std::string::npos) << r.all();
  EXPECT_TRUE(Objects().empty());
}

TEST_F(CliTest, UnchangedSourceIsNotUploadedTwice) {
  fs::path app = MakeApp("twice");
  CliResult first = Cli("build " + Quote(app.string()) + " --project " + project_ + " " + Auth());
  ASSERT_EQ(first.exit_code, 0) << first.all();
  EXPECT_EQ(first.out.find("already uploaded"), std::string::npos);
  auto before = Objects();
  ASSERT_EQ(before.size(), 1u);
  auto head_before = s3_client_->HeadObject(kBucket, before[0].key);
  ASSERT_TRUE(head_before.ok());

  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // Last-Modified has seconds
  CliResult second = Cli("build " + Quote(app.string()) + " --project " + project_ + " " + Auth());
  ASSERT_EQ(second.exit_code, 0) << second.all();
  EXPECT_NE(second.out.find("Context already uploaded"), std::string::npos) << second.all();
  EXPECT_EQ(second.out.find("Uploaded "), std::string::npos) << second.all();
  auto after = Objects();
  ASSERT_EQ(after.size(), 1u);
  auto head_after = s3_client_->HeadObject(kBucket, before[0].key);
  ASSERT_TRUE(head_after.ok());
  EXPECT_EQ(head_after->etag, head_before->etag);
  EXPECT_EQ(head_after->last_modified, head_before->last_modified);

  // A changed file is a new context, uploaded.
  WriteText(app / "site/index.html", "<h1>changed</h1>\n");
  CliResult third = Cli("build " + Quote(app.string()) + " --project " + project_ + " " + Auth());
  ASSERT_EQ(third.exit_code, 0) << third.all();
  EXPECT_NE(third.out.find("Uploaded "), std::string::npos) << third.all();
  EXPECT_EQ(Objects().size(), 2u);
}

TEST_F(CliTest, ConnectionProblemsAreClearErrors) {
  fs::path app = MakeApp("auth");
  std::string dir = Quote(app.string());

  CliResult none = Cli("build " + dir + " --project " + project_);
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("no control plane configured"), std::string::npos) << none.all();
  EXPECT_NE(none.err.find("slipway dev"), std::string::npos) << none.all();

  CliResult no_token =
      Cli("build " + dir + " --project " + project_ + " --control-plane " + CtrlEndpoint());
  EXPECT_NE(no_token.exit_code, 0);
  EXPECT_NE(no_token.err.find("no API token for the control plane at " + CtrlEndpoint()),
            std::string::npos)
      << no_token.all();

  CliResult wrong = Cli("build " + dir + " --project " + project_ + " --control-plane " +
                        CtrlEndpoint() + " --token not-a-token");
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.err.find("refused the API token from --token"), std::string::npos) << wrong.all();

  CliResult wrong_env =
      Cli("list", {{"SLIPWAY_CONTROL_PLANE", CtrlEndpoint()}, {"SLIPWAY_TOKEN", "nope"}});
  EXPECT_NE(wrong_env.exit_code, 0);
  EXPECT_NE(wrong_env.err.find("refused the API token from SLIPWAY_TOKEN"), std::string::npos)
      << wrong_env.all();
  EXPECT_TRUE(Objects().empty());  // nothing was uploaded with a refused token

  std::string nowhere = "http://127.0.0.1:" + std::to_string(testing::FreePort());
  CliResult down = Cli("list --control-plane " + nowhere + " --token x");
  EXPECT_NE(down.exit_code, 0);
  EXPECT_NE(down.err.find("cannot reach the control plane at " + nowhere), std::string::npos)
      << down.all();
  EXPECT_NE(down.err.find("slipway dev"), std::string::npos) << down.all();

  // The dev credentials file, when nothing else is given.
  WriteText(root_.path() / "config/slipway/dev.json",
            nlohmann::json{{"control_plane", CtrlEndpoint()}, {"token", token_}}.dump());
  CliResult from_file = Cli("list");
  EXPECT_EQ(from_file.exit_code, 0) << from_file.all();
  EXPECT_NE(from_file.out.find("No deployments yet"), std::string::npos) << from_file.all();
  // A flag still wins over the file.
  CliResult flag_wins = Cli("list --token not-a-token");
  EXPECT_NE(flag_wins.exit_code, 0);
  EXPECT_NE(flag_wins.err.find("refused the API token from --token"), std::string::npos)
      << flag_wins.all();
}

TEST_F(CliTest, InterruptedBuildSaysItGoesOn) {
  fs::path app = MakeApp("slow");
  // The project name in the RUN step keeps the builder's cache from skipping the wait.
  WriteText(app / "Dockerfile",
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", "
            "\"sh\", \"-c\", \"sleep 3; echo " +
                project_ + "\"]\n");
  // `exec`, so the child is the CLI itself and gets the signal.
  testing::Process cli({"/bin/sh", "-c",
                        "exec " + CliCommand("build " + Quote(app.string()) + " --project " +
                                             project_ + " --poll-interval 100ms " + Auth())});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (testing::ReadFile(root_.path() / "cli.out").find("Build ") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(RunCommand(std::string(kDocker) + " images -q " + Quote(project_)).output.empty())
      << "the build was over before the interrupt; the test shows nothing";
  cli.Signal(SIGINT);
  EXPECT_EQ(cli.Wait(std::chrono::seconds(10)), 130);
  std::string out = testing::ReadFile(root_.path() / "cli.out");
  EXPECT_TRUE(
      std::regex_search(out, std::regex("Interrupted: build bld\\S+ goes on in the control plane")))
      << out << testing::ReadFile(root_.path() / "cli.err");
  // It does go on: its image appears (and TearDown removes it).
  bool built = false;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!built && std::chrono::steady_clock::now() < deadline) {
    auto images = RunCommand(std::string(kDocker) + " images -q " + Quote(project_));
    built = images.exit_code == 0 && !images.output.empty();
    if (!built) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(built);
}

TEST_F(CliTest, DeployOfAnImageFailsAtScheduleWithoutKraneAndStatusAndListShowIt) {
  fs::path dir = root_.path() / "imageonly";
  fs::create_directories(dir);
  CliResult r = Cli("deploy " + Quote(dir.string()) + " --image example.invalid/app:1 --project " +
                    project_ + " --json --poll-interval 100ms " + Auth());
  EXPECT_NE(r.exit_code, 0) << r.all();
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.all();
  EXPECT_EQ(doc["status"], "FAILED") << doc.dump();
  EXPECT_EQ(doc["failed_step"], "schedule") << doc.dump();
  EXPECT_NE(doc["error"].get<std::string>().find("krane"), std::string::npos) << doc.dump();
  EXPECT_TRUE(doc["urls"].is_array());
  std::string id = doc["deployment_id"];
  ASSERT_EQ(id.rfind("dep", 0), 0u) << doc.dump();
  EXPECT_NE(r.err.find("failed at step schedule"), std::string::npos) << r.err;

  CliResult status = Cli("status " + id + " " + Auth());
  EXPECT_EQ(status.exit_code, 0) << status.all();
  EXPECT_NE(status.out.find("FAILED"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("schedule"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("krane"), std::string::npos) << status.out;

  CliResult status_json = Cli("status " + id + " --json " + Auth());
  auto sdoc = nlohmann::json::parse(status_json.out, nullptr, false);
  ASSERT_FALSE(sdoc.is_discarded()) << status_json.all();
  EXPECT_EQ(sdoc["deployment_id"], id);
  EXPECT_EQ(sdoc["failed_step"], "schedule");
  ASSERT_TRUE(sdoc["steps"].is_array());
  ASSERT_GE(sdoc["steps"].size(), 2u);
  EXPECT_EQ(sdoc["steps"][1]["name"], "schedule");
  EXPECT_EQ(sdoc["steps"][1]["status"], "failed");

  CliResult list = Cli("list --project " + project_ + " " + Auth());
  EXPECT_EQ(list.exit_code, 0) << list.all();
  EXPECT_NE(list.out.find(id), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("FAILED"), std::string::npos) << list.out;
  CliResult list_json = Cli("list --json --project " + project_ + " " + Auth());
  auto ldoc = nlohmann::json::parse(list_json.out, nullptr, false);
  ASSERT_FALSE(ldoc.is_discarded()) << list_json.all();
  ASSERT_EQ(ldoc["deployments"].size(), 1u);
  EXPECT_EQ(ldoc["deployments"][0]["deployment_id"], id);

  CliResult missing = Cli("status dep_doesnotexist " + Auth());
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_FALSE(missing.err.empty());
}

TEST_F(CliTest, DeployFromSourceBuildsShowsStepsAndGitThenFailsWithoutKrane) {
  fs::path app = MakeApp("gitapp", "deploy-build-marker");
  WriteText(app / "slipway.toml",
            "project = \"" + project_ + "\"\n[deploy]\nreplicas = 2\nport = 8080\n");
  auto git = RunCommand("cd " + Quote(app.string()) +
                        " && git init -q -b feature/login . && git add -A && git -c "
                        "user.name='Ada Lovelace' -c user.email=ada@example.com commit -q -m "
                        "'first version'");
  ASSERT_EQ(git.exit_code, 0) << git.output;

  CliResult r = Cli("deploy " + Quote(app.string()) + " --poll-interval 200ms " + Auth());
  EXPECT_NE(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("deploy-build-marker"), std::string::npos) << r.all();
  EXPECT_TRUE(std::regex_search(r.out, std::regex("build +succeeded +[0-9.]+s"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("schedule +failed +[0-9.]+s .*krane"))) << r.out;
  EXPECT_NE(r.err.find("failed at step schedule"), std::string::npos) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("Deployment (dep\\S+) created"))) << r.out;

  CliResult status = Cli("status " + m[1].str() + " --json " + Auth());
  auto doc = nlohmann::json::parse(status.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << status.all();
  EXPECT_EQ(doc["project"], project_);
  EXPECT_EQ(doc["branch"], "feature/login");
  EXPECT_EQ(doc["git"]["commit_message"], "first version");
  EXPECT_EQ(doc["git"]["author"], "Ada Lovelace <ada@example.com>");
  EXPECT_EQ(doc["git"]["commit_sha"].get<std::string>().size(), 40u);
  EXPECT_EQ(doc["image"].get<std::string>().rfind(project_ + ":", 0), 0u) << doc.dump();
}

TEST_F(CliTest, MalformedSlipwayTomlNamesFileAndLine) {
  fs::path app = MakeApp("badtoml");
  WriteText(app / "slipway.toml", "project = \"ok\"\n\n[deploy]\nreplicas = \"three\"\n");
  CliResult r = Cli("deploy " + Quote(app.string()) + " " + Auth());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find((app / "slipway.toml").string() + ":4:"), std::string::npos) << r.all();
  EXPECT_NE(r.err.find("deploy.replicas must be an integer"), std::string::npos) << r.all();
  EXPECT_TRUE(Objects().empty());
}

// An object store that takes at most 1 MiB per object.
class CliSmallStoreTest : public CliTest {
 protected:
  std::string S3MaxObjectSize() const override { return "1MiB"; }
};

TEST_F(CliSmallStoreTest, UploadRefusedByTheStoreShowsTheStoresError) {
  fs::path app = MakeApp("toolarge");  // busybox alone is about 2 MiB
  CliResult r =
      Cli("build " + Quote(app.string()) + " --json --project " + project_ + " " + Auth());
  EXPECT_NE(r.exit_code, 0) << r.all();
  EXPECT_NE(r.err.find("the object store refused the upload"), std::string::npos) << r.all();
  EXPECT_NE(r.err.find("EntityTooLarge"), std::string::npos) << r.all();
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.out;
  EXPECT_EQ(doc["status"], "ERROR");
  EXPECT_EQ(doc["build_id"], "");
  EXPECT_NE(doc["error"].get<std::string>().find("EntityTooLarge"), std::string::npos);
  EXPECT_TRUE(Objects().empty());
}

}  // namespace
}  // namespace slipway::cli
