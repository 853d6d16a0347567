// The operational endpoints of every service, scraped from real processes (`slipway run s3`,
// `run krane`, `run ctrl`, `run gateway`, wired together) and read with the Prometheus
// project's own parser (Debian's python3-prometheus-client, support/prometheus.h): /healthz and /readyz answer, every
// /metrics page parses, and the metrics move with the work (a deploy adds to the step and build
// histograms, a request through the gateway to its host's counter, the upload to the store's
// bytes-in). Every service runs with --log-format json, and every line each one wrote must be a
// JSON object with time, level, logger and message.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <unistd.h>

#include <ctime>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/metrics.h"
#include "support/prometheus.h"
#include "support/test_support.h"

namespace slipway::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr char kAccessKey[] = "ops-test-key";
constexpr char kSecretKey[] = "ops-test-secret-0123456789";
constexpr char kKraneToken[] = "ops-test-krane-token";
constexpr uint64_t kNoiseBytes = 64 * 1024;  // incompressible: the context is at least this big

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Http {
  int status = 0;
  std::string body;
};

Http Get(const std::string& url, const std::string& extra = "") {
  CommandResult r = RunCommand("curl -s -m 10 " + extra + " -w '\\n%{http_code}' " + Quote(url));
  Http h;
  size_t nl = r.output.rfind('\n');
  if (nl == std::string::npos) return h;
  h.body = r.output.substr(0, nl);
  h.status = std::atoi(r.output.c_str() + nl + 1);
  return h;
}

// Every line of a service's log as JSON; a test failure for each line that is not the object
// --log-format json promises.
size_t ExpectJsonLogLines(const fs::path& log, const std::string& service) {
  std::istringstream lines(ReadFile(log));
  size_t count = 0;
  for (std::string line; std::getline(lines, line);) {
    ++count;
    Json j = Json::parse(line, nullptr, false);
    EXPECT_TRUE(j.is_object()) << service << " wrote a line that is not JSON: " << line;
    if (!j.is_object()) continue;
    for (const char* field : {"time", "level", "logger", "message"}) {
      EXPECT_TRUE(j.contains(field) && j[field].is_string())
          << service << ": no string \"" << field << "\" in " << line;
    }
  }
  return count;
}

// Four services as four processes, as production runs them, each logging JSON.
class ScrapedServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(RunCommand("/usr/bin/python3 -c 'import prometheus_client'").exit_code, 0)
        << "Debian's python3-prometheus-client is needed (scripts/setup.sh installs it)";
    ASSERT_EQ(RunCommand("/usr/bin/docker version >/dev/null 2>&1").exit_code, 0)
        << "dockerd does not answer (scripts/services.sh dockerd)";
    s3_port_ = FreePort();
    krane_port_ = FreePort();
    ctrl_port_ = FreePort();
    gateway_port_ = FreePort();
    admin_port_ = FreePort();
    const std::string partition = (dir_.path() / "partition.db").string();

    s3_ = Start("s3", {"run", "s3", "--log-format", "json", "--listen", Address(s3_port_), "--data",
                       (dir_.path() / "s3").string()},
                {{"S3_ACCESS_KEY_ID", kAccessKey}, {"S3_SECRET_ACCESS_KEY", kSecretKey}});
    ASSERT_TRUE(WaitForPort(s3_port_)) << Log("s3");
    krane_ = Start("krane", {"run", "krane", "--log-format", "json", "--listen",
                             Address(krane_port_), "--token", kKraneToken});
    ASSERT_TRUE(WaitForPort(krane_port_)) << Log("krane");

    // ctrl prints its token on stdout, which goes to a file of its own.
    std::string cmd = "exec " + Quote(SlipwayBinary()) +
                      " run ctrl --log-format json --listen " + Address(ctrl_port_) +
                      " --database " + Quote((dir_.path() / "main.db").string()) +
                      " --partition-database " + Quote(partition) + " --s3-endpoint " +
                      Url(s3_port_) + " --s3-access-key " + kAccessKey + " --s3-secret-key " +
                      kSecretKey + " --krane-url " + Url(krane_port_) + " --krane-token " +
                      kKraneToken + " --gateway-port " + std::to_string(gateway_port_) +
                      " --wait-interval 200ms --issue-token ops >" +
                      Quote((dir_.path() / "ctrl.out").string()) + " 2>" +
                      Quote((dir_.path() / "ctrl.log").string());
    ctrl_ = std::make_unique<Process>(std::vector<std::string>{"/bin/sh", "-c", cmd});
    ASSERT_TRUE(WaitForPort(ctrl_port_, std::chrono::seconds(30))) << Log("ctrl");
    for (int i = 0; i < 300 && ReadFile(dir_.path() / "ctrl.out").find('\n') == std::string::npos;
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::string out = ReadFile(dir_.path() / "ctrl.out");
    token_ = out.substr(0, out.find('\n'));
    ASSERT_FALSE(token_.empty()) << Log("ctrl");

    // After ctrl, which makes the partition database the gateway reads.
    gateway_ = Start("gateway", {"run", "gateway", "--log-format", "json", "--listen",
                                 Address(gateway_port_), "--admin-listen", Address(admin_port_),
                                 "--partition-database", partition});
    ASSERT_TRUE(WaitForPort(gateway_port_)) << Log("gateway");
    ASSERT_TRUE(WaitForPort(admin_port_)) << Log("gateway");
  }

  void TearDown() override {
    for (auto* p : {&gateway_, &ctrl_, &krane_, &s3_}) {
      if (*p) (*p)->Signal(SIGTERM), (*p)->Wait(std::chrono::seconds(20));
    }
    if (!deployment_.empty()) {
      RunCommand("/usr/bin/docker ps -aq --filter label=slipway.deployment=" + deployment_ +
                 " | xargs -r /usr/bin/docker rm -f >/dev/null");
    }
  }

  std::unique_ptr<Process> Start(const std::string& name, std::vector<std::string> args,
                                 std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), SlipwayBinary());
    return std::make_unique<Process>(args, env, (dir_.path() / (name + ".log")).string());
  }
  static std::string Address(int port) { return "127.0.0.1:" + std::to_string(port); }
  static std::string Url(int port) { return "http://127.0.0.1:" + std::to_string(port); }
  std::string Log(const std::string& name) const { return ReadFile(dir_.path() / (name + ".log")); }

  // Where each service serves its operational endpoints: the gateway on its admin listener.
  std::map<std::string, int> OpsPorts() const {
    return {{"s3", s3_port_}, {"krane", krane_port_}, {"ctrl", ctrl_port_}, {"gateway", admin_port_}};
  }

  std::map<std::string, Scrape> ScrapeAll() {
    std::map<std::string, Scrape> pages;
    for (const auto& [service, port] : OpsPorts()) {
      pages[service] = ParseWithPrometheus(Url(port) + "/metrics");
    }
    return pages;
  }

  // `slipway deploy --json` of a copy of examples/hello; the parsed result.
  Json Deploy() {
    fs::path app = dir_.path() / "opsapp";
    fs::copy(SourceDir() / "examples/hello", app, fs::copy_options::recursive);
    fs::remove(app / "slipway.toml");
    // Bytes no earlier run had: dockerd keeps contexts it downloaded, and would answer a
    // known one from its cache (a 304 from the store) instead of downloading it again.
    WriteRandomFile(app / "www/noise.bin", kNoiseBytes,
                    static_cast<uint32_t>(::getpid() ^ std::time(nullptr)));
    fs::create_directories(dir_.path() / "config");
    CommandResult r = RunCommand(
        "env XDG_CONFIG_HOME=" + Quote((dir_.path() / "config").string()) + " " +
        Quote(SlipwayBinary()) + " deploy " + Quote(app.string()) + " --control-plane " +
        Url(ctrl_port_) + " --token " + token_ + " --poll-interval 250ms --json 2>" +
        Quote((dir_.path() / "deploy.err").string()));
    std::string last;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line[0] == '{') last = line;
    }
    Json j = Json::parse(last, nullptr, false);
    if (j.is_object()) deployment_ = j.value("deployment_id", "");
    return j;
  }

  TempDir dir_;
  int s3_port_ = 0, krane_port_ = 0, ctrl_port_ = 0, gateway_port_ = 0, admin_port_ = 0;
  std::string token_;
  std::string deployment_;
  std::unique_ptr<Process> s3_, krane_, ctrl_, gateway_;
};

TEST_F(ScrapedServicesTest, EveryServiceAnswersHealthReadinessAndMetricsAndTheMetricsMove) {
  for (const auto& [service, port] : OpsPorts()) {
    Http health = Get(Url(port) + "/healthz");
    EXPECT_EQ(health.status, 200) << service;
    EXPECT_EQ(health.body, "ok\n") << service;
    Http ready = Get(Url(port) + "/readyz");
    EXPECT_EQ(ready.status, 200) << service << ": " << ready.body;
    EXPECT_EQ(Get(Url(port) + "/metrics", "-X POST").status, 405) << service;
  }

  std::map<std::string, Scrape> before = ScrapeAll();
  for (const auto& [service, page] : before) {
    ASSERT_TRUE(page.ok) << service << ": " << page.error;
    EXPECT_EQ(page.page["content_type"], "text/plain; version=0.0.4; charset=utf-8") << service;
    EXPECT_EQ(page.Value("slipway_build_info", {{"service", service}}), 1) << service;
    for (const auto& family : page.page["families"]) {
      // "unknown" is what the parser makes of a family without its # TYPE line.
      EXPECT_NE(family["type"], "unknown") << service << " " << family["name"];
      EXPECT_FALSE(family["help"].get<std::string>().empty()) << service << " " << family["name"];
    }
  }

  Json deployed = Deploy();
  ASSERT_TRUE(deployed.is_object()) << ReadFile(dir_.path() / "deploy.err") << Log("ctrl");
  ASSERT_EQ(deployed.value("status", ""), "READY") << deployed.dump() << Log("ctrl");
  std::string url;
  for (const auto& u : deployed["urls"]) {
    if (u.get<std::string>().find("-production.") != std::string::npos) url = u;
  }
  ASSERT_FALSE(url.empty()) << deployed.dump();
  std::string host = url.substr(7, url.rfind(':') - 7);  // "http://<host>:<port>"
  Http app = Get(url + "/");
  EXPECT_EQ(app.status, 200) << app.body;
  // The routed port leaves /healthz and /metrics to the app (busybox httpd has neither).
  Http app_metrics = Get(url + "/metrics");
  EXPECT_EQ(app_metrics.status, 404);
  EXPECT_EQ(app_metrics.body.find("slipway_"), std::string::npos) << app_metrics.body;
  EXPECT_EQ(Get(Url(gateway_port_) + "/", "-H 'Host: nobody.localhost'").status, 404);

  // Requests are counted once their responses are sent: the last may show a moment later.
  std::map<std::string, Scrape> after = ScrapeAll();
  for (int i = 0; i < 50 && after["gateway"].Value("slipway_gateway_request_duration_seconds_count") < 3;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = ScrapeAll();
  }
  for (const auto& [service, page] : after) ASSERT_TRUE(page.ok) << service << ": " << page.error;
  const Scrape& ctrl = after["ctrl"];
  for (const char* step : {"build", "schedule", "wait", "openapi", "route"}) {
    EXPECT_EQ(ctrl.Value("slipway_deploy_step_duration_seconds_count", {{"step", step}, {"outcome", "ok"}}) -
                  before["ctrl"].Value("slipway_deploy_step_duration_seconds_count",
                                       {{"step", step}, {"outcome", "ok"}}),
              1)
        << step;
  }
  EXPECT_EQ(ctrl.Value("slipway_build_duration_seconds_count",
                       {{"backend", "docker"}, {"outcome", "succeeded"}}),
            1);
  EXPECT_GT(ctrl.Value("slipway_build_duration_seconds_sum", {{"backend", "docker"}}), 0);
  EXPECT_EQ(ctrl.Value("slipway_rpc_requests_total",
                       {{"procedure", "/slipway.ctrl.v1.DeploymentService/CreateDeployment"},
                        {"code", "ok"}}),
            1);
  // The CLI follows the deployment on its stream (a stream is counted once it ended).
  EXPECT_GE(ctrl.Value("slipway_rpc_duration_seconds_count",
                       {{"procedure", "/slipway.ctrl.v1.DeploymentService/WatchDeployment"}}),
            1);

  const Scrape& krane = after["krane"];
  EXPECT_GE(krane.Value("slipway_rpc_requests_total",
                        {{"procedure", "/slipway.krane.v1.DeploymentService/CreateDeployment"},
                         {"code", "ok"}}),
            1);
  EXPECT_GE(krane.Value("slipway_rpc_requests_total",
                        {{"procedure", "/slipway.krane.v1.DeploymentService/GetDeployment"}}),
            1);

  const Scrape& gateway = after["gateway"];
  EXPECT_EQ(gateway.Value("slipway_gateway_requests_total", {{"host", host}, {"code", "200"}}), 1)
      << host;
  EXPECT_EQ(gateway.Value("slipway_gateway_requests_total", {{"host", host}, {"code", "404"}}), 1);
  EXPECT_EQ(gateway.Value("slipway_gateway_requests_total", {{"host", ""}, {"code", "404"}}), 1)
      << "a host nobody routes is counted under \"\", not under what the client sent";
  EXPECT_EQ(gateway.Value("slipway_gateway_request_duration_seconds_count", {{"host", host}}), 2);
  EXPECT_EQ(gateway.Value("slipway_gateway_upstream_errors_total"), 0);

  const Scrape& s3 = after["s3"];
  double put_in = s3.Value("slipway_s3_received_bytes_total", {{"operation", "PutObject"}});
  EXPECT_GT(put_in, kNoiseBytes) << "the uploaded context (examples/hello and 64 KiB of noise)";
  EXPECT_EQ(before["s3"].Value("slipway_s3_received_bytes_total", {{"operation", "PutObject"}}), 0);
  EXPECT_EQ(s3.Value("slipway_s3_requests_total", {{"operation", "PutObject"}, {"code", "200"}}), 1);
  // dockerd downloaded the same bytes through the presigned GET.
  EXPECT_EQ(s3.Value("slipway_s3_requests_total", {{"operation", "GetObject"}, {"code", "200"}}), 1);
  EXPECT_EQ(s3.Value("slipway_s3_sent_bytes_total", {{"operation", "GetObject"}}), put_in);

  // Every line every service wrote is one JSON object.
  for (const char* service : {"s3", "krane", "ctrl", "gateway"}) {
    EXPECT_GT(ExpectJsonLogLines(dir_.path() / (std::string(service) + ".log"), service), 0u)
        << service << " logged nothing";
  }
}

TEST_F(ScrapedServicesTest, KraneIsNotReadyWhileItsDockerdDoesNotAnswer) {
  int port = FreePort();
  auto krane = Start("krane-no-docker",
                     {"run", "krane", "--listen", Address(port), "--token", kKraneToken,
                      "--docker-host", "unix://" + (dir_.path() / "no-dockerd.sock").string()});
  ASSERT_TRUE(WaitForPort(port)) << Log("krane-no-docker");
  EXPECT_EQ(Get(Url(port) + "/healthz").status, 200) << "alive, if not ready";
  Http ready = Get(Url(port) + "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("dockerd"), std::string::npos) << ready.body;
  krane->Signal(SIGTERM);
  krane->Wait();
}

TEST(PrometheusExpositionTest, TheRealParserReadsBackEveryLabelValueAndHelpText) {
  metrics::Registry registry;
  const std::vector<std::string> values = {"plain", "quote\"d", "back\\slash", "new\nline",
                                           "utf-8 \xc3\xa9\xe2\x82\xac", "{braces}=,", ""};
  auto& counter = registry.AddCounter("odd_total", "Help with \\ and\na line break", {"v"});
  auto& histogram = registry.AddHistogram("odd_seconds", "Seconds", {"v"}, {0.5, 2});
  for (size_t i = 0; i < values.size(); ++i) {
    counter.With({values[i]}).Increment(static_cast<double>(i + 1));
    histogram.With({values[i]}).Observe(static_cast<double>(i));
  }
  TempDir dir;
  fs::path file = dir.path() / "page.txt";
  std::ofstream(file) << registry.Exposition();
  Scrape page = ParseWithPrometheus(file.string());
  ASSERT_TRUE(page.ok) << page.error << "\n" << registry.Exposition();
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(page.Value("odd_total", {{"v", values[i]}}), static_cast<double>(i + 1)) << values[i];
    EXPECT_EQ(page.Value("odd_seconds_count", {{"v", values[i]}}), 1) << values[i];
    EXPECT_EQ(page.Value("odd_seconds_bucket", {{"v", values[i]}, {"le", "+Inf"}}), 1);
  }
  bool help_found = false;
  for (const auto& f : page.page["families"]) {
    if (f["name"] == "odd") {
      EXPECT_EQ(f["help"], "Help with \\ and\na line break");
      help_found = true;
    }
  }
  EXPECT_TRUE(help_found) << page.page["families"].dump();
}

}  // namespace
}  // namespace slipway::testing
