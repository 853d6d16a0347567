// ctrl's cap on client connections, as an operator sets it: `slipway run ctrl` with
// CTRL_MAX_CONNECTIONS serves that many connections at once, answers the next one 503 with a
// sentence naming the setting to raise, and serves new connections again once one closes; and
// a ctrl whose open file limit (ulimit -n) cannot carry its cap says so when it starts.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/loopback_socket.h"
#include "support/test_support.h"

namespace slipway::testing {
namespace {

constexpr const char* kAccessKey = "conn-test-access";
constexpr const char* kSecretKey = "conn-test-secret-0123456789";

std::string Quote(const std::string& s) { return "'" + s + "'"; }
std::string Address(int port) { return "127.0.0.1:" + std::to_string(port); }

class CtrlConnectionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    s3_port_ = FreePort();
    s3_ = std::make_unique<Process>(
        std::vector<std::string>{SlipwayBinary(), "run", "s3", "--listen", Address(s3_port_),
                                 "--data", (dir_.path() / "s3").string()},
        std::map<std::string, std::string>{{"S3_ACCESS_KEY_ID", kAccessKey},
                                           {"S3_SECRET_ACCESS_KEY", kSecretKey}},
        (dir_.path() / "s3.log").string());
    ASSERT_TRUE(WaitForPort(s3_port_)) << ReadFile(dir_.path() / "s3.log");
  }
  void TearDown() override {
    for (auto* p : {&ctrl_, &s3_}) {
      if (*p) (*p)->Signal(SIGTERM), (*p)->Wait(std::chrono::seconds(20));
    }
  }

  // `slipway run ctrl` on SQLite, after `shell_prefix` (a ulimit, say), with `env` set.
  void StartCtrl(const std::map<std::string, std::string>& env, const std::string& shell_prefix = "") {
    ctrl_port_ = FreePort();
    const std::string cmd = shell_prefix + "exec " + Quote(SlipwayBinary()) + " run ctrl --listen " +
                            Address(ctrl_port_) + " --database " +
                            Quote((dir_.path() / "main.db").string()) + " --s3-endpoint http://" +
                            Address(s3_port_) + " --s3-access-key " + kAccessKey +
                            " --s3-secret-key " + kSecretKey;
    ctrl_ = std::make_unique<Process>(std::vector<std::string>{"/bin/sh", "-c", cmd}, env,
                                      (dir_.path() / log_name_).string());
    ASSERT_TRUE(WaitForPort(ctrl_port_, std::chrono::seconds(30))) << Log();
  }
  std::string Log() const { return ReadFile(dir_.path() / log_name_); }

  // GET /healthz on a kept-alive connection: its status line, or "" when nothing came. The
  // body is read too, so the connection is ready for the next request.
  static std::string HealthzStatusLine(LoopbackSocket& s, std::string* body = nullptr) {
    if (!s.Send("GET /healthz HTTP/1.1\r\nHost: ctrl\r\n\r\n")) return "";
    const std::string head = s.ReadHead();
    const size_t length_at = head.find("Content-Length: ");
    std::string text;
    if (length_at == std::string::npos ||
        !s.ReadExactly(std::stoul(head.substr(length_at + 16)), &text)) {
      return "";
    }
    if (body != nullptr) *body = text;
    return head.substr(0, head.find("\r\n"));
  }

  // A new connection whose GET /healthz is answered 200, tried again every 20 ms while ctrl
  // answers 503 (or nothing); nullptr once `within` has passed.
  std::unique_ptr<LoopbackSocket> ServedConnection(std::chrono::seconds within) const {
    for (auto deadline = std::chrono::steady_clock::now() + within;;) {
      auto s = std::make_unique<LoopbackSocket>(ctrl_port_, std::chrono::seconds(10));
      if (s->connected() && HealthzStatusLine(*s) == "HTTP/1.1 200 OK") return s;
      if (std::chrono::steady_clock::now() >= deadline) return nullptr;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  TempDir dir_;
  std::string log_name_ = "ctrl.log";
  int s3_port_ = 0, ctrl_port_ = 0;
  std::unique_ptr<Process> s3_, ctrl_;
};

TEST_F(CtrlConnectionsTest, PastItsConnectionCapCtrlAnswers503NamingTheSettingAndServesAgainOnceOneCloses) {
  constexpr int kCap = 4;
  StartCtrl({{"CTRL_MAX_CONNECTIONS", std::to_string(kCap)}});
  // kCap connections, each answered (so ctrl counts it) and kept open. The start-up probe's
  // connection (WaitForPort) counts until ctrl reads its EOF, so each is tried until answered.
  std::vector<std::unique_ptr<LoopbackSocket>> held;
  for (int i = 0; i < kCap; ++i) {
    held.push_back(ServedConnection(std::chrono::seconds(5)));
    ASSERT_NE(held.back(), nullptr) << "connection " << i << "\n" << Log();
  }

  LoopbackSocket over(ctrl_port_, std::chrono::seconds(10));
  ASSERT_TRUE(over.connected());
  std::string body;
  EXPECT_EQ(HealthzStatusLine(over, &body), "HTTP/1.1 503 Service Unavailable") << body;
  EXPECT_NE(body.find("limit of 4 connections"), std::string::npos) << body;
  EXPECT_NE(body.find("raise --max-connections (CTRL_MAX_CONNECTIONS)"), std::string::npos) << body;
  EXPECT_TRUE(over.Closed()) << "the refused connection is closed";
  EXPECT_NE(Log().find("refusing"), std::string::npos) << Log();

  // The cap counts connections open now: once one closes, a new one is served. ctrl learns of
  // the close when its thread reads EOF, so the new connection is tried until it is answered.
  held.front().reset();
  EXPECT_NE(ServedConnection(std::chrono::seconds(10)), nullptr) << Log();
  // The connections held all along are still served.
  EXPECT_EQ(HealthzStatusLine(*held.back()), "HTTP/1.1 200 OK");
}

TEST_F(CtrlConnectionsTest, AnOpenFileLimitBelowTheCapIsNamedAtStart) {
  // A hard limit of 300 cannot be raised by ctrl: 1,024 connections need more descriptors.
  StartCtrl({}, "ulimit -Sn 300 && ulimit -Hn 300 && ");
  const std::string log = Log();
  EXPECT_NE(log.find("the open file limit (ulimit -n) is 300"), std::string::npos) << log;
  EXPECT_NE(log.find("1024 connections"), std::string::npos) << log;
  EXPECT_NE(log.find("--max-connections (CTRL_MAX_CONNECTIONS)"), std::string::npos) << log;

  // Below its hard limit, a soft limit is raised to what the cap needs, and nothing is warned.
  ctrl_->Signal(SIGTERM);
  ctrl_->Wait(std::chrono::seconds(20));
  log_name_ = "ctrl-raised.log";
  StartCtrl({{"CTRL_MAX_CONNECTIONS", "2000"}}, "ulimit -Sn 256 && ulimit -Hn 4096 && ");
  const std::string raised = Log();
  EXPECT_NE(raised.find("raised the open file limit from 256 to 2128"), std::string::npos) << raised;
  EXPECT_EQ(raised.find("the open file limit (ulimit -n) is"), std::string::npos) << raised;
  const std::string limits = ReadFile("/proc/" + std::to_string(ctrl_->pid()) + "/limits");
  EXPECT_NE(limits.find("Max open files            2128"), std::string::npos) << limits;
}

}  // namespace
}  // namespace slipway::testing
